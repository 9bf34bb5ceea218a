package collector

// The dashboard's view models: typed page data built by small functions
// that take what the handlers read and are tested without HTTP.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/charts"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

// pageBase is what every page has: its title and what the header shows
// about the visitor (set by the renderer).
type pageBase struct {
	Title string
	Auth  authView
}

func (p *pageBase) setAuth(v authView) { p.Auth = v }

// authSetter is a page the renderer gives the visitor to.
type authSetter interface{ setAuth(authView) }

// formatCount writes n with thousands separators: 1234567 → "1,234,567".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// numText is formatCount for any integer a template holds.
func numText(n any) string {
	switch v := n.(type) {
	case int:
		return formatCount(int64(v))
	case int64:
		return formatCount(v)
	case uint64:
		if v > math.MaxInt64 {
			return strconv.FormatUint(v, 10)
		}
		return formatCount(int64(v))
	case int32:
		return formatCount(int64(v))
	case uint32:
		return formatCount(int64(v))
	}
	return fmt.Sprint(n)
}

// --- one verdict per page ---------------------------------------------------

// pageVerdict is the one answer a page gives to "may the new path be
// promoted?": the rollout step's gate while a rollout judges one, the
// experiment's gate otherwise. Every coloured rate on the page follows it.
type pageVerdict struct {
	GateView
	// Source says which pairs were judged, for people: "this rollout step's
	// gate, over pairs since 15:04:05" or "the experiment's gate, over the
	// last 1h".
	Source string
	// Limit is the divergence limit the verdict was judged against.
	Limit float64
	// bySegment is each segment's verdict: the worst of its units.
	bySegment map[string]report.SegmentResult
}

// verdictOf picks the page's verdict: the rollout's gate when it has one.
func verdictOf(experiment GateView, ro *RolloutView) pageVerdict {
	v := pageVerdict{GateView: experiment}
	if ro != nil && ro.Gate != nil {
		v.GateView = *ro.Gate
		v.Source = "this rollout step's gate, over the pairs since " + v.Since.UTC().Format("Jan 2 15:04:05 MST")
	} else {
		w := experiment.Spec.Window
		if w == "" {
			w = "window"
		}
		v.Source = "the experiment's gate, over the last " + w
	}
	v.Limit = v.Spec.MaxRate
	v.bySegment = segmentVerdicts(v.Segments)
	return v
}

// Segment returns the verdict on segment: the worst over its units (a
// rollout judges each operation of a segment on its own, keyed
// "operation segment"). ok is false when the gate did not judge it.
func (v pageVerdict) Segment(segment string) (report.SegmentResult, bool) {
	r, ok := v.bySegment[segment]
	return r, ok
}

// segmentVerdicts folds units into segments: fail over inconclusive over
// pass.
func segmentVerdicts(units []report.SegmentResult) map[string]report.SegmentResult {
	rank := map[report.Verdict]int{report.Pass: 1, report.Inconclusive: 2, report.Fail: 3}
	out := map[string]report.SegmentResult{}
	for _, u := range units {
		seg := u.Segment
		if _, rest, ok := strings.Cut(seg, " "); ok {
			seg = rest
		}
		if cur, ok := out[seg]; !ok || rank[u.Verdict] > rank[cur.Verdict] {
			u.Segment = seg
			out[seg] = u
		}
	}
	return out
}

// verdictClass is the CSS class a rate takes from its verdict: "pass",
// "fail", "inconclusive", or "unjudged".
func verdictClass(v report.Verdict) string {
	switch v {
	case report.Pass, report.Fail, report.Inconclusive:
		return string(v)
	}
	return "unjudged"
}

// --- charts -----------------------------------------------------------------

// segmentChart is one small chart of the experiment page.
type segmentChart struct {
	Segment string
	Class   string // the segment's verdict
	Note    string // what the chart says, in words
	SVG     template.HTML
}

// rateCharts draws one small chart per segment in order, on one shared
// scale with the limit, each line coloured by its segment's verdict. Time
// runs from the first pair to until.
func rateCharts(points []store.SeriesPoint, order []string, v pageVerdict, step time.Duration, until time.Time) []segmentChart {
	bySeg := map[string][]charts.Point{}
	top := 0.0
	for _, p := range points {
		if p.Pairs == 0 {
			continue
		}
		r := float64(p.Divergent) / float64(p.Pairs)
		bySeg[p.Segment] = append(bySeg[p.Segment], charts.Point{At: p.At, Value: r})
		top = max(top, r)
	}
	var first time.Time
	for _, pts := range bySeg {
		if len(pts) > 0 && (first.IsZero() || pts[0].At.Before(first)) {
			first = pts[0].At
		}
	}
	var out []segmentChart
	for _, seg := range order {
		pts := bySeg[seg]
		if len(pts) == 0 {
			continue
		}
		class := "unjudged"
		if r, ok := v.Segment(seg); ok {
			class = verdictClass(r.Verdict)
		}
		// Every chart spans the same time, from the first pair of any
		// segment to until, so the charts line up.
		c := charts.Lines([]charts.Series{{Name: seg, Points: pts, Class: class}}, charts.Options{
			Title: "Divergence of " + seg + " per " + step.String(), Width: 380, Height: 130,
			Step: step, Limit: v.Limit, YMax: top, From: first, Until: until,
		})
		out = append(out, segmentChart{Segment: seg, Class: class, SVG: c.SVG()})
	}
	return out
}

// boundsOverTime accumulates each segment's pairs bucket by bucket and
// gives, at each bucket, the anytime-valid bounds the gate rests on.
func boundsOverTime(points []store.SeriesPoint, alpha float64) map[string][]charts.BoundPoint {
	type acc struct{ hits, n int64 }
	sums := map[string]*acc{}
	out := map[string][]charts.BoundPoint{}
	for _, p := range points { // ordered by segment, then time
		a := sums[p.Segment]
		if a == nil {
			a = &acc{}
			sums[p.Segment] = a
		}
		a.hits += p.Divergent
		a.n += p.Pairs
		if a.n == 0 {
			continue
		}
		// Each side alone at alpha, as the gate's checks use them.
		lo, hi := report.LowerBound(a.hits, a.n, alpha), report.UpperBound(a.hits, a.n, alpha)
		out[p.Segment] = append(out[p.Segment], charts.BoundPoint{At: p.At, Value: float64(a.hits) / float64(a.n), Low: lo, High: hi})
	}
	return out
}

// boundsCharts draws, per segment the gate judged, its bounds over time
// against the limit, and says when it will decide.
func boundsCharts(points []store.SeriesPoint, order []string, v pageVerdict, step time.Duration, until time.Time) []segmentChart {
	alpha := v.Alpha
	if alpha == 0 {
		alpha = report.DefaultAlpha
	}
	if v.Limit <= 0 {
		return nil
	}
	bounds := boundsOverTime(points, alpha)
	var out []segmentChart
	for _, seg := range order {
		pts := bounds[seg]
		r, judged := v.Segment(seg)
		if len(pts) == 0 || !judged {
			continue
		}
		c := charts.Bounds(seg, pts, charts.Options{Title: "Anytime-valid bounds on the divergence of " + seg,
			Width: 380, Height: 130, Step: step, Limit: v.Limit, Until: until})
		out = append(out, segmentChart{Segment: seg, Class: verdictClass(r.Verdict), Note: decisionNote(r, pts), SVG: c.SVG()})
	}
	return out
}

// decisionNote says why a segment's verdict is what it is, and for an
// undecided one when it will decide at its current pace.
func decisionNote(r report.SegmentResult, pts []charts.BoundPoint) string {
	last := pts[len(pts)-1]
	switch r.Verdict {
	case report.Pass:
		return "pass: the upper bound " + charts.Percent(last.High) + " is below the limit"
	case report.Fail:
		return "fail: the lower bound " + charts.Percent(last.Low) + " is above the limit"
	}
	if r.MorePairs <= 0 {
		return "inconclusive: " + r.Reason
	}
	note := "inconclusive: needs about " + formatCount(r.MorePairs) + " more pairs"
	if span := last.At.Sub(pts[0].At); span > 0 && r.AnytimeDivergence.Total > 0 {
		perSecond := float64(r.AnytimeDivergence.Total) / span.Seconds()
		if perSecond > 0 {
			note += fmt.Sprintf(", about %s at the current pace", roundDuration(time.Duration(float64(r.MorePairs)/perSecond*float64(time.Second))))
		}
	}
	return note
}

// roundDuration shows a wait in whole seconds, minutes or hours.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(max(1, int(d.Seconds()+0.5))) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes()+0.5)) + " min"
	}
	return strconv.FormatFloat(d.Hours(), 'f', 1, 64) + " h"
}

// --- the overview -------------------------------------------------------------

// overviewPageSize is how many experiments the overview shows per page.
const overviewPageSize = 20

// overviewQuery is the overview's search, sort and page.
type overviewQuery struct {
	Search string // part of the name, case-insensitive
	Sort   string // name, pairs, rate, last
	Dir    string // asc, desc
	Page   int    // from 1
}

// overviewSorts are the overview's sortable columns.
var overviewSorts = []string{"name", "pairs", "rate", "last"}

// parseOverviewQuery reads ?q=&sort=&dir=&page=, with a 400 naming a bad
// parameter.
func parseOverviewQuery(c echo.Context) (overviewQuery, error) {
	search, err := queryText(c, "q", 64)
	if err != nil {
		return overviewQuery{}, err
	}
	o := overviewQuery{Search: strings.TrimSpace(search)}
	if o.Sort, err = queryEnum(c, "sort", "name", "name", "pairs", "rate", "last"); err != nil {
		return o, err
	}
	defDir := "desc"
	if o.Sort == "name" {
		defDir = "asc"
	}
	if o.Dir, err = queryEnum(c, "dir", defDir, "asc", "desc"); err != nil {
		return o, err
	}
	page, err := queryInt(c, "page", 1, 1, 1_000_000)
	if err != nil {
		return o, err
	}
	o.Page = int(page)
	return o, nil
}

// overviewSelection is one page of the overview's experiments.
type overviewSelection struct {
	Shown   []ExperimentView
	Matched int // experiments the search matched
	Pages   int
	Page    int // the page shown: a page past the last shows the last
}

// pageOf places the store's page of matched experiments.
func pageOf(exps []store.Experiment, matched int, q overviewQuery) overviewSelection {
	sel := overviewSelection{Matched: matched, Pages: max(1, (matched+overviewPageSize-1)/overviewPageSize), Page: max(q.Page, 1)}
	for _, e := range exps {
		sel.Shown = append(sel.Shown, ExperimentView{Name: e.Name, Stage: e.Stage, Rate: report.NewRate(e.Divergent, e.Pairs), FirstSeen: e.FirstSeen, LastSeen: e.LastSeen})
	}
	return sel
}

// overviewURL is the overview's address with q, changing what set says.
func overviewURL(q overviewQuery, set func(*overviewQuery)) string {
	set(&q)
	v := url.Values{}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	v.Set("sort", q.Sort)
	v.Set("dir", q.Dir)
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return "/?" + v.Encode()
}

// overviewSortLinks gives each column's link: sorted by it, toggling the
// direction of the current one, back on page 1.
func overviewSortLinks(q overviewQuery) map[string]string {
	out := map[string]string{}
	for _, k := range overviewSorts {
		out[k] = overviewURL(q, func(o *overviewQuery) {
			d := "desc"
			if k == "name" {
				d = "asc"
			}
			if k == o.Sort {
				d = map[string]string{"asc": "desc", "desc": "asc"}[o.Dir]
			}
			o.Sort, o.Dir, o.Page = k, d, 1
		})
	}
	return out
}

// sparkline draws an experiment's divergence per hour: no line where no
// pairs were counted.
func sparkChart(points []store.SeriesPoint, name string, until time.Time) template.HTML {
	var pts []charts.Point
	for _, p := range points {
		if p.Pairs > 0 {
			pts = append(pts, charts.Point{At: p.At, Value: float64(p.Divergent) / float64(p.Pairs)})
		}
	}
	if len(pts) == 0 {
		return template.HTML(`<span class="muted">no pairs</span>`)
	}
	return charts.Spark(pts, charts.Options{Title: "divergence of " + name + " per hour", Step: time.Hour, Until: until}).SVG()
}

// --- samples ------------------------------------------------------------------

// markedJSON pretty-prints a JSON document with the values at paths (as
// pkg/diff names them: "items[1].price", `["a b"]`, "$" for the root)
// inside <mark>. Text that is not JSON is shown as it is.
func markedJSON(raw []byte, paths []string) template.HTML {
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	m := marker{dec: dec, want: want, out: &b}
	if err := m.value("$", 0); err != nil {
		return template.HTML(template.HTMLEscapeString(string(raw)))
	}
	if _, err := dec.Token(); err != io.EOF {
		return template.HTML(template.HTMLEscapeString(string(raw)))
	}
	return template.HTML(b.String())
}

type marker struct {
	dec  *json.Decoder
	want map[string]bool
	out  *strings.Builder
}

func (m *marker) value(path string, depth int) error {
	marked := m.want[path]
	if marked {
		m.out.WriteString(`<mark data-path="` + template.HTMLEscapeString(path) + `">`)
	}
	tok, err := m.dec.Token()
	if err != nil {
		return err
	}
	indent := func(d int) { m.out.WriteString("\n" + strings.Repeat("  ", d)) }
	switch t := tok.(type) {
	case json.Delim:
		closer, n := map[json.Delim]string{'{': "}", '[': "]"}[t], 0
		m.out.WriteString(string(t))
		for m.dec.More() {
			if n > 0 {
				m.out.WriteByte(',')
			}
			indent(depth + 1)
			child := path + "[" + strconv.Itoa(n) + "]"
			if t == '{' {
				kt, err := m.dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				child = childPath(path, key)
				m.out.WriteString(template.HTMLEscapeString(strconv.Quote(key)) + ": ")
			} else if path == "$" {
				child = "[" + strconv.Itoa(n) + "]"
			}
			if err := m.value(child, depth+1); err != nil {
				return err
			}
			n++
		}
		if _, err := m.dec.Token(); err != nil {
			return err
		}
		if n > 0 {
			indent(depth)
		}
		m.out.WriteString(closer)
	case string:
		q, _ := json.Marshal(t)
		m.out.WriteString(template.HTMLEscapeString(string(q)))
	case json.Number:
		m.out.WriteString(template.HTMLEscapeString(t.String()))
	case bool:
		m.out.WriteString(strconv.FormatBool(t))
	case nil:
		m.out.WriteString("null")
	}
	if marked {
		m.out.WriteString(`</mark>`)
	}
	return nil
}

// childPath names key under path as pkg/diff does: bare keys joined by
// ".", others quoted in brackets.
func childPath(path, key string) string {
	bare := key != ""
	for i, c := range key {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			bare = false
			break
		}
	}
	if path == "$" {
		path = ""
	}
	if bare {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	var q bytes.Buffer
	enc := json.NewEncoder(&q)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(key)
	return path + "[" + strings.TrimSpace(q.String()) + "]"
}
