package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// GateSpecView is a promotion gate as the API reads and writes it.
type GateSpecView = controller.GateSpec

// DefaultGate is the gate of an experiment that has none stored.
var DefaultGate = controller.DefaultGate

// GateView is the gate's verdict on an experiment.
type GateView = controller.GateView

// storedGate returns the experiment's gate, or DefaultGate.
func (s *handlers) storedGate(ctx context.Context, name string) (GateSpecView, error) {
	return controller.StoredGate(ctx, s.db, name)
}

// gateOverrides applies the request's parameters to the stored gate.
func gateOverrides(c echo.Context, g GateSpecView) (GateSpecView, time.Time, error) {
	for name, dst := range map[string]*float64{"max_rate": &g.MaxRate, "max_error_rate": &g.MaxCandidateErrorRate} {
		r, ok, err := queryRate(c, name)
		if err != nil {
			return g, time.Time{}, err
		}
		if ok {
			*dst = r
		}
	}
	for name, dst := range map[string]*float64{"max_p99_ratio": &g.MaxP99LatencyRatio, "alpha": &g.Alpha} {
		f, ok, err := queryFloat(c, name)
		if err != nil {
			return g, time.Time{}, err
		}
		if ok {
			*dst = f
		}
	}
	n, err := queryInt(c, "min_pairs", g.MinPairs, 0, 1<<62)
	if err != nil {
		return g, time.Time{}, err
	}
	g.MinPairs = n
	b, ok, err := queryBool(c, "per_segment")
	if err != nil {
		return g, time.Time{}, err
	}
	if ok {
		g.PerSegment = b
	}
	b, ok, err = queryBool(c, "per_operation")
	if err != nil {
		return g, time.Time{}, err
	}
	if ok {
		g.PerOperation = &b
	}
	if queryHas(c, "window") {
		w, _, err := windowParam(c, "")
		if err != nil {
			return g, time.Time{}, err
		}
		g.Window = w
	}
	since, err := queryTime(c, "since")
	return g, since, err
}

// optionalJSONBody refuses a request body that is present but not one
// JSON value (of at most 64 KiB).
func optionalJSONBody(c echo.Context) error {
	const limit = 64 << 10
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "body: not readable")
	}
	switch {
	case len(b) > limit:
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "body: more than 64 KiB")
	case len(bytes.TrimSpace(b)) > 0 && !json.Valid(b):
		return echo.NewHTTPError(http.StatusBadRequest, "body: not JSON")
	}
	return nil
}

// parseRate reads a rate as a fraction (0.001) or a percentage (0.1%).
func parseRate(v string) (float64, error) {
	s, pct := strings.CutSuffix(strings.TrimSpace(v), "%")
	f, err := strconv.ParseFloat(s, 64)
	if pct {
		f /= 100
	}
	if err != nil || f <= 0 || f >= 1 {
		return 0, fmt.Errorf("not a rate between 0 and 1 (0.001) or a percentage (0.1%%)")
	}
	return f, nil
}

// evaluateGate judges an experiment under g over the counts since anchor
// (or, for AnchorNone, over g's window), each (operation, segment) unit on
// its own unless g says otherwise. A verdict with no anchor is never pass.
func (s *handlers) evaluateGate(ctx context.Context, name string, g GateSpecView, anchor controller.Anchor) (GateView, error) {
	spec, window, err := g.Spec()
	if err != nil {
		return GateView{}, echo.NewHTTPError(http.StatusBadRequest, "gate: "+err.Error())
	}
	now := time.Now().UTC()
	if anchor.Kind == controller.AnchorNone {
		anchor.Since = time.Time{}
		if window > 0 {
			// Rounded up to the minute: the same minutes, and a key that
			// repeated looks within the minute share.
			anchor.Since = ceilMinute(now.Add(-window))
		}
	}
	versions, err := s.db.Versions(ctx, []string{name})
	if err != nil {
		return GateView{}, err
	}
	version, known := versions[name]
	key := verdictKey("gate", name, version, g, anchor, now)
	if known {
		if v, ok := s.verdicts.get(key); ok {
			return v, nil
		}
	}
	var segs []report.Segment
	if g.PerOperation == nil || *g.PerOperation {
		segs, err = controller.UnitStats(ctx, s.db, name, anchor.Since)
	} else {
		segs, err = s.segmentStats(ctx, name, store.SegmentQuery{Since: anchor.Since})
	}
	noPairs := errors.Is(err, store.ErrNotFound)
	if err != nil && !noPairs {
		return GateView{}, err
	}
	res, err := report.Evaluate(spec, segs, report.Total(segs))
	if err != nil {
		return GateView{}, echo.NewHTTPError(http.StatusBadRequest, "gate: "+err.Error())
	}
	v := GateView{Experiment: name, Since: anchor.Since, Spec: g, Anchor: anchor, GateResult: res}
	if noPairs {
		// An experiment is known from its first pair: before it, the answer
		// is "not yet", which rollout tools wait on, never "missing", which
		// they count as an error and abort on.
		v.Verdict = report.Inconclusive
		v.Reason = noPairsReason(name)
		v.NoPairs = true
	}
	if anchor.Kind == controller.AnchorNone && v.Verdict == report.Pass {
		// A sliding window judges a different sample at every look: looked at
		// often enough, it passes a segment at the limit (docs/gate.md).
		v.Verdict = report.Inconclusive
		v.Reason = noAnchorReason
	}
	if known && !noPairs {
		s.verdicts.put(key, v)
	}
	return v, nil
}

// noAnchorReason explains why a look with no anchor does not pass.
const noAnchorReason = "no anchor: the counts pass over the sliding window, but a pass needs counts from a fixed start: name the analysis (?analysis=NAME), give the step's start (?since=), or plan a rollout"

// noPairsReason explains the verdict on an experiment with no pair yet.
func noPairsReason(name string) string {
	return fmt.Sprintf("no pairs yet: experiment %s has recorded none (check the name if this lasts)", name)
}

// evaluateGates is evaluateGate under each experiment's stored gate, for a
// page of experiments in a few round trips whatever their number: one for
// the specs, one for the versions, one per distinct window for the counts of
// the experiments whose verdicts are not cached. An experiment whose
// stored gate cannot be applied, or without counts, is absent.
func (s *handlers) evaluateGates(ctx context.Context, names []string) (map[string]GateView, error) {
	stored, err := s.db.GateSpecsOf(ctx, names)
	if err != nil {
		return nil, err
	}
	versions, err := s.db.Versions(ctx, names)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	out := map[string]GateView{}
	keys := map[string]string{}
	type judged struct {
		view GateSpecView
		spec report.GateSpec
	}
	bySince := map[time.Time][]string{}
	specs := map[string]judged{}
	for _, name := range names {
		g := controller.DefaultGate
		if st, ok := stored[name]; ok {
			if err := json.Unmarshal(st.Spec, &g); err != nil {
				continue
			}
		}
		spec, window, err := g.Spec()
		if err != nil {
			continue
		}
		var since time.Time
		if window > 0 {
			since = ceilMinute(now.Add(-window))
		}
		version, ok := versions[name]
		if !ok {
			continue // no counts
		}
		anchor := windowAnchor
		anchor.Since = since
		keys[name] = verdictKey("overview", name, version, g, anchor, now)
		if v, ok := s.verdicts.get(keys[name]); ok {
			out[name] = v
			continue
		}
		specs[name] = judged{g, spec}
		bySince[since] = append(bySince[since], name)
	}
	for since, group := range bySince {
		q := store.SegmentQuery{Since: since}
		counts, err := s.db.SegmentsOf(ctx, group, q)
		if err != nil {
			return nil, err
		}
		for _, name := range group {
			rows, ok := counts[name]
			if !ok {
				continue
			}
			j := specs[name]
			segs := countedSegments(rows)
			if j.spec.MaxP99LatencyRatio > 0 {
				if segs, err = s.withLatencies(ctx, name, q, rows); err != nil {
					return nil, err
				}
			}
			res, err := report.Evaluate(j.spec, segs, report.Total(segs))
			if err != nil {
				continue
			}
			v := GateView{Experiment: name, Since: since, Spec: j.view, Anchor: windowAnchor, GateResult: res}
			v.Anchor.Since = since
			if v.Verdict == report.Pass {
				// The overview's window has no anchor: shown, never a pass.
				v.Verdict = report.Inconclusive
				v.Reason = noAnchorReason
			}
			out[name] = v
			s.verdicts.put(keys[name], v)
		}
	}
	return out, nil
}

// segmentStats gathers each segment's counts and latencies over q.
func (s *handlers) segmentStats(ctx context.Context, name string, q store.SegmentQuery) ([]report.Segment, error) {
	rows, err := s.db.Segments(ctx, name, q)
	if err != nil {
		return nil, err
	}
	return s.withLatencies(ctx, name, q, rows)
}

// countedSegments turns counted rows into segment statistics without
// latencies, in the rows' order.
func countedSegments(rows []store.SegmentCount) []report.Segment {
	out := make([]report.Segment, 0, len(rows))
	for _, r := range rows {
		out = append(out, report.Segment{Key: r.Segment, Attrs: r.Attrs, Stats: report.SegmentStats{Counters: r.Counters}})
	}
	return out
}

// withLatencies turns counted rows into segment statistics with their
// latencies over q, in the rows' order.
func (s *handlers) withLatencies(ctx context.Context, name string, q store.SegmentQuery, rows []store.SegmentCount) ([]report.Segment, error) {
	return controller.WithLatencies(ctx, s.db, name, q, rows)
}

// gate judges the experiment of the request from its anchor, in this order:
// the request's since; the experiment's current rollout step (judged as the
// controller judges it); a named analysis (?analysis=, or for Flagger's
// webhooks the canary revision in webhook), anchored at its first look; and
// otherwise none — a sliding window, never pass.
func (s *handlers) gate(c echo.Context, webhook string) (GateView, error) {
	name, err := nameParam(c, "name")
	if err != nil {
		return GateView{}, err
	}
	ctx := c.Request().Context()
	g, err := s.storedGate(ctx, name)
	if err != nil {
		return GateView{}, err
	}
	g, since, err := gateOverrides(c, g)
	if err != nil {
		return GateView{}, err
	}
	analysis, err := analysisParam(c)
	if err != nil {
		return GateView{}, err
	}
	if analysis == "" {
		analysis = webhook
	}
	if !since.IsZero() {
		return s.evaluateGate(ctx, name, g, controller.Anchor{Kind: controller.AnchorSince, Since: since.UTC(),
			Reason: "the request's since"})
	}
	if s.ctl != nil {
		r, err := s.db.Rollout(ctx, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return GateView{}, err
		}
		if err == nil && r.Step > 0 {
			plan, err := controller.ParsePlan(r.Plan)
			if err != nil {
				return GateView{}, err
			}
			if _, _, err := g.Spec(); err != nil {
				return GateView{}, echo.NewHTTPError(http.StatusBadRequest, "gate: "+err.Error())
			}
			gv, gated, err := s.ctl.GateWith(ctx, r, plan, g)
			if err != nil {
				return GateView{}, err
			}
			if gated {
				return gv, nil
			}
		}
	}
	if analysis != "" {
		at, err := s.db.Anchor(ctx, name, analysis, time.Now())
		if err != nil {
			return GateView{}, err
		}
		return s.evaluateGate(ctx, name, g, controller.Anchor{Kind: controller.AnchorAnalysis, Since: at, Analysis: analysis,
			Reason: "the first look of analysis " + analysis})
	}
	return s.evaluateGate(ctx, name, g, windowAnchor)
}

// windowAnchor is the anchor of a look with none: the spec's sliding window.
var windowAnchor = controller.Anchor{Kind: controller.AnchorNone,
	Reason: "none: a sliding window, which can fail or stay inconclusive but never pass; name the analysis (?analysis=NAME), give the step's start (?since=), or plan a rollout"}

// maxAnalysisName bounds an analysis name.
const maxAnalysisName = 200

// analysisParam reads ?analysis=: up to 200 printable ASCII characters
// without spaces.
func analysisParam(c echo.Context) (string, error) {
	v, err := queryText(c, "analysis", maxAnalysisName)
	if err != nil {
		return "", err
	}
	for _, r := range v {
		if r <= ' ' || r > '~' {
			return "", badParam("analysis", fmt.Sprintf("%q has a character other than printable ASCII", v))
		}
	}
	return v, nil
}

// flaggerAnalysis names the analysis of a Flagger webhook call by the
// canary and its revision's checksum, read from the payload; "" when the
// payload has no checksum. The body is put back for the handler.
func flaggerAnalysis(r *http.Request) string {
	if r.Body == nil {
		return ""
	}
	const limit = 64 << 10
	head, err := io.ReadAll(io.LimitReader(r.Body, limit))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err != nil {
		return ""
	}
	var p struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		Checksum  string `json:"checksum"`
	}
	if json.Unmarshal(head, &p) != nil || p.Checksum == "" {
		return ""
	}
	name := "flagger/" + p.Namespace + "/" + p.Name + "/" + p.Checksum
	for _, r := range name {
		if r <= ' ' || r > '~' {
			return ""
		}
	}
	if len(name) > maxAnalysisName {
		return ""
	}
	return name
}

// apiGate answers GET /api/v1/experiments/{name}/gate: the verdict as JSON,
// always 200 when one could be reached (Argo Rollouts reads the verdict).
func (s *handlers) apiGate(c echo.Context) error {
	v, err := s.gate(c, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// apiGateConfirm is Flagger's confirm-promotion webhook: 200 lets the
// promotion go on, 412 holds it (Flagger treats any status above 202 as no).
func (s *handlers) apiGateConfirm(c echo.Context) error {
	// Flagger's payload names the canary revision; the body is optional
	// (others send nothing) and, when there is one, must be JSON.
	webhook := flaggerAnalysis(c.Request())
	if err := optionalJSONBody(c); err != nil {
		return err
	}
	v, err := s.gate(c, webhook)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if v.Verdict != report.Pass {
		code = http.StatusPreconditionFailed
	}
	return c.JSON(code, v)
}

// apiGateRollback is Flagger's rollback webhook, which Flagger asks every
// interval while a canary is analysed and rolls back on any status up to
// 202: 200 when the gate fails, 412 otherwise.
func (s *handlers) apiGateRollback(c echo.Context) error {
	webhook := flaggerAnalysis(c.Request())
	if err := optionalJSONBody(c); err != nil {
		return err
	}
	v, err := s.gate(c, webhook)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if v.Verdict != report.Fail {
		code = http.StatusPreconditionFailed
	}
	return c.JSON(code, v)
}

func (s *handlers) apiGateSpec(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	g, err := s.storedGate(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g)
}

func (s *handlers) apiPutGateSpec(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var g GateSpecView
	if err := decodeBody(c, &g); err != nil {
		return err
	}
	if _, _, err := g.Spec(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "gate: "+err.Error())
	}
	doc, _ := json.Marshal(g) // plain fields always marshal
	if _, err := s.db.SaveGateSpec(c.Request().Context(), name, doc, "api"); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g)
}
