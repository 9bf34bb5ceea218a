package collector

// The dashboard's pages: each handler reads what its page needs, a small
// function builds the page's typed view model (view.go, tested without
// HTTP), and a template renders it.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/report"
)

// --- overview -----------------------------------------------------------------

// overviewPage is the overview's view model.
type overviewPage struct {
	pageBase
	Query     overviewQuery
	Rows      []overviewRow
	Total     int // experiments in all
	Matched   int // experiments the search matched
	Page      int
	Pages     int
	PrevURL   string
	NextURL   string
	SortLinks map[string]string
	Pipeline  PipelineView
}

// overviewRow is one experiment on the overview.
type overviewRow struct {
	ExperimentView
	// Verdict is the experiment's one verdict (the rollout step's gate
	// while a rollout judges one); empty when it could not be judged.
	Verdict report.Verdict
	Why     string
	Limit   float64
	// PerSegment says the limit applies to each segment, not the total.
	PerSegment bool
	Class      string // the rate's colour: the verdict's
	Spark      template.HTML
	// Rollout is "step 3 of 7, active", or empty without a rollout.
	Rollout string
}

// buildOverview fills in the rows of the page sel selected out of total
// experiments; verdicts, sparklines and rollout positions are given for the
// names on that page only.
func buildOverview(sel overviewSelection, total int, q overviewQuery, verdicts map[string]pageVerdict, series map[string][]store.SeriesPoint,
	position map[string]string, now time.Time) overviewPage {
	at, pages := sel.Page, sel.Pages
	q.Page = at
	p := overviewPage{pageBase: pageBase{Title: "Experiments"}, Query: q, Total: total, Matched: sel.Matched, Page: at, Pages: pages,
		SortLinks: overviewSortLinks(q)}
	if at > 1 {
		p.PrevURL = overviewURL(q, func(o *overviewQuery) { o.Page = at - 1 })
	}
	if at < pages {
		p.NextURL = overviewURL(q, func(o *overviewQuery) { o.Page = at + 1 })
	}
	for _, e := range sel.Shown {
		row := overviewRow{ExperimentView: e, Rollout: position[e.Name], Class: "unjudged",
			Spark: sparkChart(series[e.Name], e.Name, now)}
		if v, ok := verdicts[e.Name]; ok {
			row.Verdict, row.Why, row.Limit, row.Class = v.Verdict, v.Reason, v.Limit, verdictClass(v.Verdict)
			row.PerSegment = v.Spec.PerSegment
		}
		p.Rows = append(p.Rows, row)
	}
	return p
}

func (s *handlers) overview(c echo.Context) error {
	q, err := parseOverviewQuery(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	read := func(q overviewQuery) (overviewSelection, int, error) {
		exps, matched, total, err := s.db.ExperimentPage(ctx, store.ExperimentQuery{Search: q.Search, Sort: q.Sort, Desc: q.Dir == "desc",
			Offset: (q.Page - 1) * overviewPageSize, Limit: overviewPageSize})
		return pageOf(exps, matched, q), total, err
	}
	sel, total, err := read(q)
	if err != nil {
		return err
	}
	if sel.Page > sel.Pages { // past the last page: show the last
		q.Page = sel.Pages
		if sel, total, err = read(q); err != nil {
			return err
		}
	}
	rollouts, err := s.db.Rollouts(ctx)
	if err != nil {
		return err
	}
	position := map[string]string{}
	for _, r := range rollouts {
		if plan, err := controller.ParsePlan(r.Plan); err == nil {
			position[r.Experiment] = "step " + strconv.Itoa(r.Step) + " of " + strconv.Itoa(len(plan.Steps)) + ", " + r.Status
		}
	}
	names := make([]string, len(sel.Shown))
	for i, e := range sel.Shown {
		names[i] = e.Name
	}
	gates, err := s.evaluateGates(ctx, names)
	if err != nil {
		return err
	}
	verdicts := map[string]pageVerdict{}
	for name, gv := range gates {
		var ro *RolloutView
		if _, ok := position[name]; ok {
			if ro, err = s.pageRollout(c, name); err != nil {
				return err
			}
		}
		verdicts[name] = verdictOf(gv, ro)
	}
	now := time.Now()
	// The last 24 hours, whole: the series per experiment answers them
	// without a minute.
	series, err := s.db.OverviewOf(ctx, names, now.Truncate(time.Hour).Add(-23*time.Hour), time.Hour)
	if err != nil {
		return err
	}
	page := buildOverview(sel, total, q, verdicts, series, position, now)
	if page.Pipeline, err = s.pipeline(ctx); err != nil {
		return err
	}
	return c.Render(http.StatusOK, "overview.html", &page)
}

// --- experiment -------------------------------------------------------------------

// experimentPage is the experiment page's view model.
type experimentPage struct {
	pageBase
	Name       string
	Window     string
	Windows    []string
	Operation  string
	Operations []string
	// Verdict is the page's one answer to "may the new path be promoted?".
	Verdict    pageVerdict
	LimitText  string // "limit 1%"
	Rows       []*segmentRow
	Total      report.Rate
	TotalClass string
	HasNoise   bool
	// RateCharts are one small chart per segment; BoundsCharts show, per
	// segment the gate judged, its anytime-valid bounds against the limit.
	RateCharts   []segmentChart
	BoundsCharts []segmentChart
	Step         string
	Marginals    []report.Segment
	Variants     []store.VariantCount
	Filters      map[string]string
	AttrNames    []string
	AttrValues   map[string][]string
	Sort, Dir    string
	SortLinks    map[string]string
	Live         bool
	LiveURL      string
	Segment      string // the samples' segment, if chosen
	Samples      []store.Sample
	Signatures   []SignatureView
	Noise        []diff.Proposal
	Rules        store.Rules
	Rollout      *RolloutView
	Sweeps       *SweepSection
}

// experimentData is what the experiment handler reads for its page.
type experimentData struct {
	Name, Window, Operation string
	Filters                 map[string]string
	Sort, Dir               string
	URL                     *url.URL
	Live                    bool // ?live=1: the page refreshes itself
	Counts                  []store.SegmentCount
	Segs                    []report.Segment // Counts with latencies, in the same order
	Verdict                 pageVerdict
	Series                  []store.SeriesPoint // the window's, per Step
	GateSeries              []store.SeriesPoint // since the verdict's start, per GateStep
	Step, GateStep          time.Duration
	Now                     time.Time
	Operations              []string
	Variants                []store.VariantCount
	SampleSegment           string
	Samples                 []store.Sample
	Signatures              []SignatureView
	Noise                   []diff.Proposal
	Rules                   store.Rules
	Rollout                 *RolloutView
	Sweeps                  *SweepSection
}

// buildExperimentPage turns what the handler read into the page.
func buildExperimentPage(d experimentData) experimentPage {
	p := experimentPage{pageBase: pageBase{Title: d.Name}, Name: d.Name, Window: d.Window, Windows: windows, Operation: d.Operation,
		Operations: d.Operations, Verdict: d.Verdict, Filters: d.Filters, Sort: d.Sort, Dir: d.Dir,
		SortLinks: sortLinks(d.URL, d.Sort, d.Dir), Variants: d.Variants, Segment: d.SampleSegment, Samples: d.Samples,
		Signatures: d.Signatures, Noise: d.Noise, Rules: d.Rules, Rollout: d.Rollout, Sweeps: d.Sweeps, Step: d.Step.String(),
		TotalClass: verdictClass(d.Verdict.Verdict)}
	if d.Verdict.Limit > 0 {
		p.LimitText = "limit " + pctText(d.Verdict.Limit)
	}
	var shown []report.Segment
	for i, r := range d.Counts {
		if !matches(r.Attrs, d.Filters) {
			continue
		}
		row := &segmentRow{Segment: r.Segment, Attrs: r.Attrs, Rate: report.NewRate(r.Divergent, r.Pairs),
			ControlErrors: r.ControlErrors, CandidateErrors: r.CandidateErrors, Skipped: r.Skipped, Timeouts: r.Timeouts,
			Latency: latencyOf(d.Segs[i].Stats), Class: "unjudged"}
		if g, ok := d.Verdict.Segment(r.Segment); ok {
			row.Gate, row.Class = &g, verdictClass(g.Verdict)
		}
		if r.AAPairs > 0 {
			n := report.NewRate(r.AADivergent, r.AAPairs)
			row.Noise = &n
			p.HasNoise = true
		}
		p.Rows = append(p.Rows, row)
		shown = append(shown, d.Segs[i])
	}
	less := sortKeys[d.Sort]
	sort.SliceStable(p.Rows, func(i, j int) bool {
		if d.Dir == "desc" {
			return less(p.Rows[j], p.Rows[i])
		}
		return less(p.Rows[i], p.Rows[j])
	})
	p.Total = report.Total(shown).Divergence()
	p.Marginals = report.Marginals(shown)
	p.AttrValues = map[string][]string{}
	for _, m := range report.Marginals(d.Segs) {
		for k, v := range m.Attrs {
			if p.AttrValues[k] == nil {
				p.AttrNames = append(p.AttrNames, k)
			}
			p.AttrValues[k] = append(p.AttrValues[k], v)
		}
	}
	sort.Strings(p.AttrNames)
	order := make([]string, len(p.Rows))
	for i, r := range p.Rows {
		order[i] = r.Segment
	}
	// Charts follow the table's order; the offenders come first.
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(rankOf(d.Verdict, b), rankOf(d.Verdict, a)) })
	p.RateCharts = rateCharts(d.Series, order, d.Verdict, d.Step, d.Now)
	p.BoundsCharts = boundsCharts(d.GateSeries, order, d.Verdict, d.GateStep, d.Now)
	p.Live = d.Live
	live := *d.URL
	lq := live.Query()
	if p.Live {
		lq.Del("live")
	} else {
		lq.Set("live", "1")
	}
	live.RawQuery = lq.Encode()
	p.LiveURL = live.String()
	return p
}

// rankOf orders segments for the charts: failing first, then undecided.
func rankOf(v pageVerdict, segment string) int {
	r, ok := v.Segment(segment)
	if !ok {
		return 0
	}
	return map[report.Verdict]int{report.Fail: 3, report.Inconclusive: 2, report.Pass: 1}[r.Verdict]
}

// pctText is a rate as the pages write a limit: "1%", "0.1%".
func pctText(v float64) string {
	return strconv.FormatFloat(v*100, 'g', 3, 64) + "%"
}

func (s *handlers) experiment(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	window, since, err := windowParam(c, "24h")
	if err != nil {
		return err
	}
	op, err := optionalOperation(c)
	if err != nil {
		return err
	}
	filters, err := attrFilters(c)
	if err != nil {
		return err
	}
	sortBy, err := queryText(c, "sort", 64)
	if err != nil {
		return err
	}
	dir, err := queryEnum(c, "dir", "", "asc", "desc")
	if err != nil {
		return err
	}
	if sortBy == "" {
		sortBy, dir = "segment", "asc"
	}
	if _, ok := sortKeys[sortBy]; !ok {
		return badParam("sort", "must be one of segment, pairs, divergent, rate, upper")
	}
	if dir == "" {
		return badParam("dir", "must be asc or desc")
	}
	live, err := queryEnum(c, "live", "", "1")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := store.SegmentQuery{Since: since, Operation: op}
	counts, err := s.db.Segments(ctx, name, q)
	if errors.Is(err, store.ErrNotFound) {
		// No pairs yet; a rollout may already be planned.
		ro, rerr := s.pageRollout(c, name)
		if rerr != nil || ro == nil {
			return cmp.Or(rerr, notFoundOr(err, "experiment "+name))
		}
		return c.Render(http.StatusOK, "rollout.html", map[string]any{"Title": name, "Name": name, "Rollout": ro})
	}
	if err != nil {
		return err
	}
	d := experimentData{Name: name, Window: window, Operation: op, Filters: filters, Sort: sortBy, Dir: dir,
		URL: c.Request().URL, Live: live == "1", Counts: counts, Now: time.Now()}
	from := since
	if from.IsZero() { // "all": the series fits itself to the first pair
		from = d.Now.Add(-maxWindow)
	}
	// The page's reads are independent of one another (but for the gate's
	// chart, which follows the verdict): they run at once, each on its own
	// connection, so the page costs its slowest read rather than their sum.
	// Each writes its own fields of d. The query is parsed before they share c.
	parseQuery(c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	run := func(f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		})
	}
	run(func() (err error) {
		d.Segs, err = s.withLatencies(ctx, name, q, counts)
		return err
	})
	run(func() error {
		g, err := s.storedGate(ctx, name)
		if err != nil {
			return err
		}
		// The dashboard's column judges each segment over the sliding window:
		// shown, never a pass (evaluateGate), as the window has no anchor.
		pooled := false
		g.PerOperation = &pooled
		gate, err := s.evaluateGate(ctx, name, g, windowAnchor)
		if err != nil {
			return err
		}
		if d.Rollout, err = s.pageRollout(c, name); err != nil {
			return err
		}
		d.Verdict = verdictOf(gate, d.Rollout)
		gateFrom := cmp.Or(d.Verdict.Since, from)
		d.GateStep, d.GateSeries, err = s.fittedSeries(ctx, name, store.SegmentQuery{Since: gateFrom}, gateFrom, d.Now)
		return err
	})
	run(func() (err error) {
		d.Step, d.Series, err = s.fittedSeries(ctx, name, q, from, d.Now)
		return err
	})
	run(func() (err error) {
		d.Variants, err = s.db.Variants(ctx, name, q)
		return err
	})
	run(func() (err error) {
		if d.Operations, err = s.db.Operations(ctx, name); err != nil {
			return notFoundOr(err, "experiment "+name)
		}
		return nil
	})
	run(func() error {
		_, sq, err := s.sampleQuery(c)
		if err != nil {
			return err
		}
		d.SampleSegment = sq.Segment
		d.Samples, err = s.db.Samples(ctx, name, sq)
		return err
	})
	run(func() (err error) {
		d.Signatures, err = s.signatures(c, "24h")
		return err
	})
	run(func() (err error) {
		// Noise proposals are judged over the window's whole hours, which
		// the rollups answer without reading a minute.
		d.Noise, err = s.noise(ctx, name, since.Truncate(time.Hour))
		return err
	})
	run(func() (err error) {
		d.Rules, err = s.latestRules(ctx, name)
		return err
	})
	run(func() (err error) {
		d.Sweeps, err = s.pageSweeps(c, name)
		return err
	})
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	page := buildExperimentPage(d)
	return c.Render(http.StatusOK, "experiment.html", &page)
}

// fittedSeries reads the series of q in buckets that fit the data: when the
// first pair is much later than from (a fresh experiment in a long
// window), it reads again in finer buckets, so a chart of five minutes of
// data has a point per minute rather than one point.
func (s *handlers) fittedSeries(ctx context.Context, name string, q store.SegmentQuery, from, now time.Time) (time.Duration, []store.SeriesPoint, error) {
	step := chartStep(now.Sub(from))
	if step >= time.Hour && !q.Since.IsZero() {
		// A chart's first bucket whole: buckets of hours and days are
		// answered by the rollups without reading a minute.
		q.Since = q.Since.Truncate(step)
	}
	pts, err := s.db.Series(ctx, name, q, step)
	if err != nil || len(pts) == 0 {
		return step, pts, err
	}
	first := pts[0].At
	for _, p := range pts {
		if p.At.Before(first) {
			first = p.At
		}
	}
	if fine := chartStep(now.Sub(first)); fine < step {
		step = fine
		pts, err = s.db.Series(ctx, name, q, step)
	}
	return step, pts, err
}

// chartStep picks the bucket width for a span: at most about 96 points,
// in minutes only up to 8 hours (past that, buckets of whole hours and days,
// which the rollups answer without reading a minute).
func chartStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if span/s <= 96 {
			return s
		}
	}
	return 24 * time.Hour
}

// --- sample ---------------------------------------------------------------------

// samplePage is a divergence sample's view model.
type samplePage struct {
	pageBase
	Sample store.Sample
	Diffs  []diff.Difference
	// BackURL is the experiment page at this sample's segment's samples.
	BackURL string
	// Control and Candidate are the two results, with the values at the
	// differing paths marked; ControlNote and CandidateNote hold what the
	// observation says beside its value (an error, a status).
	Control, Candidate         template.HTML
	ControlNote, CandidateNote string
	Rendered                   string
}

// buildSamplePage lays out a sample.
func buildSamplePage(x store.Sample) samplePage {
	p := samplePage{pageBase: pageBase{Title: "Sample " + strconv.FormatInt(x.ID, 10)}, Sample: x}
	_ = json.Unmarshal(x.Diffs, &p.Diffs) // written by the verifier from the same type; absent on old samples
	paths := slices.Clone(x.Paths)
	for _, d := range p.Diffs {
		paths = append(paths, d.Path)
	}
	q := url.Values{"segment": {x.Segment}, "operation": {x.Operation}, "window": {"all"}}
	p.BackURL = "/experiments/" + url.PathEscape(x.Experiment) + "?" + q.Encode() + "#samples"
	var note string
	p.Control, p.ControlNote = observationHTML(x.Control, paths)
	p.Candidate, note = observationHTML(x.Candidate, paths)
	p.CandidateNote = note
	rendered, err := renderSample(x)
	if err != nil {
		rendered = err.Error()
	}
	p.Rendered = rendered
	return p
}

// observationHTML shows an observation's value with the differing paths
// marked, and the rest of the observation (error, status) as a note.
func observationHTML(raw json.RawMessage, paths []string) (template.HTML, string) {
	var obs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obs); err != nil {
		return markedJSON(raw, nil), ""
	}
	value, ok := obs["value"]
	if !ok {
		return template.HTML(`<span class="muted">no value</span>`), indent(raw)
	}
	delete(obs, "value")
	note := ""
	if len(obs) > 0 {
		b, _ := json.Marshal(obs)
		note = string(b)
	}
	return markedJSON(value, paths), note
}

func (s *handlers) sample(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	x, err := s.db.Sample(c.Request().Context(), id)
	if err != nil {
		return notFoundOr(err, "sample "+strconv.FormatInt(id, 10))
	}
	page := buildSamplePage(x)
	return c.Render(http.StatusOK, "sample.html", &page)
}
