package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/diff"
)

// RulesView is one version of an experiment's diff rules in the API.
type RulesView struct {
	Experiment string          `json:"experiment"`
	Version    int64           `json:"version"`
	Rules      json.RawMessage `json:"rules"`
	Author     string          `json:"author,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	CreatedAt  time.Time       `json:"created_at,omitzero"`
}

func rulesView(r store.Rules) RulesView {
	return RulesView{Experiment: r.Experiment, Version: r.Version, Rules: r.Rules, Author: r.Author, Reason: r.Reason, CreatedAt: r.CreatedAt}
}

// latestRules returns the experiment's current rules; version 0 and empty
// rules when none were saved.
func (s *handlers) latestRules(ctx context.Context, name string) (store.Rules, error) {
	r, err := s.db.Rules(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Rules{Experiment: name, Rules: json.RawMessage(`{}`)}, nil
	}
	return r, err
}

func (s *handlers) apiRules(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	r, err := s.latestRules(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rulesView(r))
}

func (s *handlers) apiRulesHistory(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	limit, err := limitParam(c, 20, 500)
	if err != nil {
		return err
	}
	rs, err := s.db.RulesHistory(c.Request().Context(), name, limit)
	if err != nil {
		return err
	}
	out := make([]RulesView, 0, len(rs))
	for _, r := range rs {
		out = append(out, rulesView(r))
	}
	return c.JSON(http.StatusOK, map[string]any{"experiment": name, "versions": out})
}

// RulesUpdate is the body of PUT /api/v1/experiments/{name}/rules.
type RulesUpdate struct {
	Rules  json.RawMessage `json:"rules"`
	Reason string          `json:"reason"`
	Author string          `json:"author"`
}

// decodeBody decodes a JSON body strictly: unknown fields are an error that
// names them.
func decodeBody(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "body: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return echo.NewHTTPError(http.StatusBadRequest, "body: unexpected data after the JSON value")
	}
	return nil
}

func (s *handlers) apiPutRules(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var u RulesUpdate
	if err := decodeBody(c, &u); err != nil {
		return err
	}
	if len(bytes.TrimSpace(u.Rules)) == 0 {
		return echo.NewHTTPError(http.StatusBadRequest, `body: field "rules" is required (use {} for exact comparison)`)
	}
	var rules diff.Rules
	dec := json.NewDecoder(bytes.NewReader(u.Rules))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "rules: "+err.Error())
	}
	saved, err := s.saveRules(c.Request().Context(), name, rules, authorOf(c, u.Author), u.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rulesView(saved))
}

// authorOf records who changed something: the authenticated token's name,
// which a request cannot forge, and the person the body names, if any.
func authorOf(c echo.Context, claimed string) string {
	who := principalName(c)
	if claimed != "" && claimed != who {
		return who + " for " + claimed
	}
	return who
}

// saveRules validates rules, stores them as the experiment's next version and
// tells the verifiers.
func (s *handlers) saveRules(ctx context.Context, name string, rules diff.Rules, author, reason string) (store.Rules, error) {
	rules.Version = 0 // the store assigns versions
	if _, err := diff.Compile(rules); err != nil {
		return store.Rules{}, echo.NewHTTPError(http.StatusBadRequest, "rules: "+err.Error())
	}
	if len(reason) > 1000 || len(author) > 200 {
		return store.Rules{}, echo.NewHTTPError(http.StatusBadRequest, "body: reason is limited to 1000 bytes and author to 200")
	}
	if author == "" {
		author = "api"
	}
	doc, err := json.Marshal(rules)
	if err != nil {
		return store.Rules{}, err
	}
	saved, err := s.db.SaveRules(ctx, name, doc, author, reason)
	if err != nil {
		return store.Rules{}, err
	}
	if s.notify != nil {
		if err := s.notify(name); err != nil {
			// The verifiers' periodic reload picks the rules up regardless.
			s.log.Warn("collector: announce rule change", "experiment", name, "err", err)
		}
	}
	s.log.Info("collector: rules saved", "experiment", name, "version", saved.Version, "author", author)
	return saved, nil
}

// SignatureView is one mismatch signature of an experiment.
type SignatureView struct {
	Signature   string             `json:"signature"`
	Description string             `json:"description"`
	Patterns    []diff.PatternKind `json:"patterns"`
	Count       int64              `json:"count"`
	Segments    int64              `json:"segments"`
	FirstSeen   time.Time          `json:"first_seen"`
	LastSeen    time.Time          `json:"last_seen"`
}

func (s *handlers) signatures(c echo.Context, defWindow string) ([]SignatureView, error) {
	name, err := nameParam(c, "name")
	if err != nil {
		return nil, err
	}
	_, since, err := windowParam(c, defWindow)
	if err != nil {
		return nil, err
	}
	op, err := optionalOperation(c)
	if err != nil {
		return nil, err
	}
	limit, err := limitParam(c, 10, 200)
	if err != nil {
		return nil, err
	}
	seg, err := queryText(c, "segment", 512)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Signatures(c.Request().Context(), name, store.SignatureQuery{Since: since, Operation: op, Segment: seg, Limit: limit})
	if err != nil {
		return nil, notFoundOr(err, "experiment "+name)
	}
	out := make([]SignatureView, 0, len(rows))
	for _, r := range rows {
		v := SignatureView{Signature: r.Signature, Count: r.Count, Segments: r.Segments, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen}
		_ = json.Unmarshal(r.Patterns, &v.Patterns) // written by the verifier from the same type
		v.Description = describe(r.Signature, v.Patterns)
		out = append(out, v)
	}
	return out, nil
}

// describe says in words what a signature's pairs have in common.
func describe(signature string, patterns []diff.PatternKind) string {
	if len(patterns) == 0 {
		return strings.ReplaceAll(signature, "_", " ") // a verdict such as candidate_error
	}
	return "differ only at " + strings.ReplaceAll(diff.Describe(patterns), "\n", "; ")
}

func (s *handlers) apiSignatures(c echo.Context) error {
	v, err := s.signatures(c, "24h")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"signatures": v})
}

// NoiseView is a proposed ignore rule with its evidence.
type NoiseView struct {
	Operation  string  `json:"operation"`
	Pattern    string  `json:"pattern"`
	Mismatches int64   `json:"mismatches"`
	Pairs      int64   `json:"pairs"`
	Fraction   float64 `json:"fraction"`
	Evidence   string  `json:"evidence"`
}

func (s *handlers) noise(ctx context.Context, name string, since time.Time) ([]diff.Proposal, error) {
	pairs, stats, err := s.db.PatternStats(ctx, name, since)
	if err != nil {
		return nil, notFoundOr(err, "experiment "+name)
	}
	tracker, err := diff.NewNoiseTracker(diff.NoiseOptions{})
	if err != nil {
		return nil, err
	}
	byOp := map[string]map[string]int64{}
	for _, st := range stats {
		if byOp[st.Operation] == nil {
			byOp[st.Operation] = map[string]int64{}
		}
		// A pattern may appear under two kinds in one pair (changed in one
		// element, missing in another): take the larger count rather than
		// the sum, which could count a pair twice.
		byOp[st.Operation][st.Pattern] = max(byOp[st.Operation][st.Pattern], st.Count)
	}
	for op, n := range pairs {
		tracker.Add(op, n, byOp[op])
	}
	return tracker.Proposals(), nil
}

func (s *handlers) apiNoise(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	_, since, err := windowParam(c, "24h")
	if err != nil {
		return err
	}
	ps, err := s.noise(c.Request().Context(), name, since)
	if err != nil {
		return err
	}
	out := make([]NoiseView, 0, len(ps))
	for _, p := range ps {
		out = append(out, NoiseView{Operation: p.Operation, Pattern: p.Pattern, Mismatches: p.Mismatches, Pairs: p.Pairs, Fraction: p.Fraction, Evidence: p.Evidence()})
	}
	return c.JSON(http.StatusOK, map[string]any{"experiment": name, "proposals": out})
}

// NoiseAccept is the body of POST /api/v1/experiments/{name}/noise/accept.
type NoiseAccept struct {
	Operation string `json:"operation"`
	Pattern   string `json:"pattern"`
	Author    string `json:"author"`
	Reason    string `json:"reason"`
}

// apiAcceptNoise turns a current noise proposal into an ignore rule: a new
// rules version, picked up by running verifiers.
func (s *handlers) apiAcceptNoise(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var a NoiseAccept
	if err := decodeBody(c, &a); err != nil {
		return err
	}
	ctx := c.Request().Context()
	ps, err := s.noise(ctx, name, time.Now().Add(-maxWindow))
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.Operation != a.Operation || p.Pattern != a.Pattern {
			continue
		}
		cur, err := s.latestRules(ctx, name)
		if err != nil {
			return err
		}
		var rules diff.Rules
		if err := json.Unmarshal(cur.Rules, &rules); err != nil {
			return err
		}
		reason := "accepted noise proposal: " + p.Evidence()
		if a.Reason != "" {
			reason = a.Reason + " (" + reason + ")"
		}
		saved, err := s.saveRules(ctx, name, p.Apply(rules), authorOf(c, a.Author), reason)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, rulesView(saved))
	}
	return echo.NewHTTPError(http.StatusNotFound, "no noise proposal for operation "+a.Operation+" at "+a.Pattern)
}

// apiSampleDiff renders one sample's difference with go-cmp, for people.
func (s *handlers) apiSampleDiff(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	x, err := s.db.Sample(c.Request().Context(), id)
	if err != nil {
		return notFoundOr(err, "sample")
	}
	text, err := renderSample(x)
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	return c.String(http.StatusOK, text)
}

// renderSample renders the difference between a sample's two values.
func renderSample(x store.Sample) (string, error) {
	var ctl, cand struct {
		Value json.RawMessage `json:"value"`
	}
	_ = json.Unmarshal(x.Control, &ctl)
	_ = json.Unmarshal(x.Candidate, &cand)
	orNull := func(v json.RawMessage) []byte {
		if len(v) == 0 {
			return []byte("null")
		}
		return v
	}
	return diff.Render(orNull(ctl.Value), orNull(cand.Value))
}
