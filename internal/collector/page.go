package collector

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// segmentRow is one row of the experiment page's segment table.
type segmentRow struct {
	Segment         string
	Attrs           map[string]string
	Rate            report.Rate
	ControlErrors   int64
	CandidateErrors int64
	Skipped         int64
	Timeouts        int64
	Noise           *report.Rate
	Gate            *report.SegmentResult
	Latency         latencyCells
}

// latencyCells are a segment's latency quantiles, old and new.
type latencyCells struct {
	OldP50, OldP95, OldP99, NewP50, NewP95, NewP99 time.Duration
	Ratio                                          float64 // new p99 ÷ old p99; 0 without data
}

func latencyOf(st report.SegmentStats) latencyCells {
	var l latencyCells
	l.NewP50, l.OldP50 = st.LatencyQuantiles(0.5)
	l.NewP95, l.OldP95 = st.LatencyQuantiles(0.95)
	l.NewP99, l.OldP99 = st.LatencyQuantiles(0.99)
	l.Ratio = st.LatencyRatio(0.99)
	return l
}

// attrFilters reads ?attr=country:IN (repeatable): a row must match all.
func attrFilters(c echo.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range queryList(c, "attr") {
		if f == "" {
			continue // the form's "all"
		}
		k, v, ok := strings.Cut(f, ":")
		if !ok || !validName(k) || v == "" || len(v) > 128 {
			return nil, badParam("attr", "not name:value, e.g. country:IN")
		}
		out[k] = v
	}
	return out, nil
}

func matches(attrs, filters map[string]string) bool {
	for k, v := range filters {
		if attrs[k] != v {
			return false
		}
	}
	return true
}

var sortKeys = map[string]func(a, b *segmentRow) bool{
	"segment":   func(a, b *segmentRow) bool { return a.Segment < b.Segment },
	"pairs":     func(a, b *segmentRow) bool { return a.Rate.Total < b.Rate.Total },
	"divergent": func(a, b *segmentRow) bool { return a.Rate.Hits < b.Rate.Hits },
	"rate":      func(a, b *segmentRow) bool { return a.Rate.Value < b.Rate.Value },
	"upper":     func(a, b *segmentRow) bool { return a.Rate.High < b.Rate.High },
}

// sortLinks returns, per sortable column, the page's URL sorted by it (the
// current column toggles direction); every other parameter is kept.
func sortLinks(u *url.URL, current, dir string) map[string]string {
	out := map[string]string{}
	for k := range sortKeys {
		q := u.Query()
		q.Set("sort", k)
		d := "desc"
		if k == current && dir == "desc" {
			d = "asc"
		}
		q.Set("dir", d)
		out[k] = u.Path + "?" + q.Encode()
	}
	return out
}

func (s *handlers) experimentPage(c echo.Context) error {
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
	segs, err := s.withLatencies(ctx, name, q, counts)
	if err != nil {
		return err
	}
	g, err := s.storedGate(ctx, name)
	if err != nil {
		return err
	}
	gate, err := s.evaluateGate(ctx, name, g, time.Time{})
	if err != nil {
		return err
	}
	gateBySeg := map[string]*report.SegmentResult{}
	for i := range gate.Segments {
		gateBySeg[gate.Segments[i].Segment] = &gate.Segments[i]
	}

	rows := make([]*segmentRow, 0, len(counts))
	var shown []report.Segment
	for i, r := range counts {
		if !matches(r.Attrs, filters) {
			continue
		}
		row := &segmentRow{Segment: r.Segment, Attrs: r.Attrs, Rate: report.NewRate(r.Divergent, r.Pairs),
			ControlErrors: r.ControlErrors, CandidateErrors: r.CandidateErrors, Skipped: r.Skipped, Timeouts: r.Timeouts,
			Gate: gateBySeg[r.Segment], Latency: latencyOf(segs[i].Stats)}
		if r.AAPairs > 0 {
			n := report.NewRate(r.AADivergent, r.AAPairs)
			row.Noise = &n
		}
		rows = append(rows, row)
		shown = append(shown, segs[i])
	}
	less := sortKeys[sortBy]
	sort.SliceStable(rows, func(i, j int) bool {
		if dir == "desc" {
			return less(rows[j], rows[i])
		}
		return less(rows[i], rows[j])
	})
	total := report.Total(shown)

	until := time.Now()
	from := since
	if from.IsZero() {
		// "all": start the chart at the experiment's first pair.
		from = until.Add(-24 * time.Hour)
		exps, err := s.db.Experiments(ctx)
		if err != nil {
			return err
		}
		for _, e := range exps {
			if e.Name == name && !e.FirstSeen.IsZero() {
				from = e.FirstSeen
			}
		}
	}
	step := chartStep(until.Sub(from))
	series, err := s.db.Series(ctx, name, q, step)
	if err != nil {
		return err
	}
	var chartPts []store.SeriesPoint
	for _, p := range series {
		for _, r := range rows {
			if r.Segment == p.Segment {
				chartPts = append(chartPts, p)
				break
			}
		}
	}
	variants, err := s.db.Variants(ctx, name, q)
	if err != nil {
		return err
	}
	ops, err := s.db.Operations(ctx, name)
	if err != nil {
		return notFoundOr(err, "experiment "+name)
	}
	_, sq, err := s.sampleQuery(c)
	if err != nil {
		return err
	}
	samples, err := s.db.Samples(ctx, name, sq)
	if err != nil {
		return err
	}
	sigs, err := s.signatures(c, "24h")
	if err != nil {
		return err
	}
	noise, err := s.noise(ctx, name, since)
	if err != nil {
		return err
	}
	rules, err := s.latestRules(ctx, name)
	if err != nil {
		return err
	}
	hasNoise := false
	for _, r := range rows {
		hasNoise = hasNoise || r.Noise != nil
	}
	var attrNames []string
	attrValues := map[string][]string{}
	for _, m := range report.Marginals(segs) {
		for k, v := range m.Attrs {
			if attrValues[k] == nil {
				attrNames = append(attrNames, k)
			}
			attrValues[k] = append(attrValues[k], v)
		}
	}
	sort.Strings(attrNames)
	liveParam, err := queryEnum(c, "live", "", "1")
	if err != nil {
		return err
	}
	live := liveParam == "1"
	liveURL := *c.Request().URL
	lq := liveURL.Query()
	if live {
		lq.Del("live")
	} else {
		lq.Set("live", "1")
	}
	liveURL.RawQuery = lq.Encode()
	ro, err := s.pageRollout(c, name)
	if err != nil {
		return err
	}
	sweeps, err := s.pageSweeps(c, name)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "experiment.html", map[string]any{
		"Rollout": ro, "Sweeps": sweeps,
		"Title": name, "Name": name, "Window": window, "Windows": windows, "Operation": op, "Operations": ops,
		"Rows": rows, "Total": total.Divergence(), "TotalStats": total, "HasNoise": hasNoise,
		"Gate": gate, "Chart": rateChart(chartPts, from, until, step), "Step": step.String(),
		"Marginals": report.Marginals(shown), "Variants": variants, "Filters": filters,
		"AttrNames": attrNames, "AttrValues": attrValues,
		"Sort": sortBy, "Dir": dir, "SortLinks": sortLinks(c.Request().URL, sortBy, dir),
		"Live": live, "LiveURL": liveURL.String(),
		"Segment": sq.Segment, "Samples": samples, "Signatures": sigs, "Noise": noise, "Rules": rules,
	})
}
