package collector

import (
	"bytes"
	"context"
	"encoding/json"
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

// evaluateGate judges an experiment under g, over the counts since since (or
// the window when since is zero).
func (s *handlers) evaluateGate(ctx context.Context, name string, g GateSpecView, since time.Time) (GateView, error) {
	spec, window, err := g.Spec()
	if err != nil {
		return GateView{}, echo.NewHTTPError(http.StatusBadRequest, "gate: "+err.Error())
	}
	if since.IsZero() && window > 0 {
		since = time.Now().Add(-window)
	}
	segs, err := s.segmentStats(ctx, name, store.SegmentQuery{Since: since})
	if err != nil {
		return GateView{}, err
	}
	res, err := report.Evaluate(spec, segs, report.Total(segs))
	if err != nil {
		return GateView{}, echo.NewHTTPError(http.StatusBadRequest, "gate: "+err.Error())
	}
	return GateView{Experiment: name, Since: since, Spec: g, GateResult: res}, nil
}

// segmentStats gathers each segment's counts and latencies over q.
func (s *handlers) segmentStats(ctx context.Context, name string, q store.SegmentQuery) ([]report.Segment, error) {
	rows, err := s.db.Segments(ctx, name, q)
	if err != nil {
		return nil, notFoundOr(err, "experiment "+name)
	}
	return s.withLatencies(ctx, name, q, rows)
}

// withLatencies turns counted rows into segment statistics with their
// latencies over q, in the rows' order.
func (s *handlers) withLatencies(ctx context.Context, name string, q store.SegmentQuery, rows []store.SegmentCount) ([]report.Segment, error) {
	return controller.WithLatencies(ctx, s.db, name, q, rows)
}

func (s *handlers) gate(c echo.Context) (GateView, error) {
	name, err := nameParam(c, "name")
	if err != nil {
		return GateView{}, err
	}
	g, err := s.storedGate(c.Request().Context(), name)
	if err != nil {
		return GateView{}, err
	}
	g, since, err := gateOverrides(c, g)
	if err != nil {
		return GateView{}, err
	}
	return s.evaluateGate(c.Request().Context(), name, g, since)
}

// apiGate answers GET /api/v1/experiments/{name}/gate: the verdict as JSON,
// always 200 when one could be reached (Argo Rollouts reads the verdict).
func (s *handlers) apiGate(c echo.Context) error {
	v, err := s.gate(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// apiGateConfirm is Flagger's confirm-promotion webhook: 200 lets the
// promotion go on, 412 holds it.
func (s *handlers) apiGateConfirm(c echo.Context) error {
	// The body is optional (Flagger sends its webhook payload, others
	// nothing); when there is one it must be JSON, as for every JSON route.
	if err := optionalJSONBody(c); err != nil {
		return err
	}
	v, err := s.gate(c)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if v.Verdict != report.Pass {
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
