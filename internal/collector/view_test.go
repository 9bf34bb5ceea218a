package collector

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
)

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 40000: "40,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

// One verdict per page: with a rollout gate the page judges by it, and a
// segment's verdict is the worst of its operations.
func TestVerdictOf(t *testing.T) {
	exp := GateView{Spec: GateSpecView{MaxRate: 0.01, Window: "1h"}, GateResult: report.GateResult{Verdict: report.Pass,
		Segments: []report.SegmentResult{{Segment: "country=IN", Verdict: report.Pass}}}}
	v := verdictOf(exp, nil)
	if v.Verdict != report.Pass || v.Limit != 0.01 || !strings.Contains(v.Source, "last 1h") {
		t.Errorf("without a rollout: %+v", v)
	}
	since := time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)
	ro := &RolloutView{Gate: &GateView{Since: since, Spec: GateSpecView{MaxRate: 0.1}, GateResult: report.GateResult{Verdict: report.Fail,
		Segments: []report.SegmentResult{
			{Segment: "GetOrder country=IN", Verdict: report.Pass},
			{Segment: "UpdateOrder country=IN", Verdict: report.Fail},
			{Segment: "GetOrder country=US", Verdict: report.Inconclusive},
			{Segment: "UpdateOrder country=US", Verdict: report.Pass},
		}}}}
	v = verdictOf(exp, ro)
	if v.Verdict != report.Fail || v.Limit != 0.1 || !strings.Contains(v.Source, "rollout step") || !strings.Contains(v.Source, "23:00:00") {
		t.Errorf("with a rollout gate: verdict %s limit %v source %q, want the rollout's fail at 10%%", v.Verdict, v.Limit, v.Source)
	}
	for seg, want := range map[string]report.Verdict{"country=IN": report.Fail, "country=US": report.Inconclusive} {
		if r, ok := v.Segment(seg); !ok || r.Verdict != want {
			t.Errorf("segment %s: %v %v, want %s", seg, r.Verdict, ok, want)
		}
	}
	if _, ok := v.Segment("country=DE"); ok {
		t.Error("an unjudged segment has a verdict")
	}
	// A rollout without a gate (a step with gate "none") leaves the
	// experiment's.
	if v := verdictOf(exp, &RolloutView{}); v.Verdict != report.Pass {
		t.Errorf("a rollout without a gate: %s", v.Verdict)
	}
}

func series(seg string, start time.Time, counts ...[2]int64) []store.SeriesPoint {
	var out []store.SeriesPoint
	for i, c := range counts {
		out = append(out, store.SeriesPoint{Segment: seg, At: start.Add(time.Duration(i) * time.Minute), Pairs: c[0], Divergent: c[1]})
	}
	return out
}

// The bounds narrow as pairs accumulate: a clean segment's upper bound
// falls below the limit, an 8% one's lower bound rises above it.
func TestBoundsOverTime(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)
	pts := append(series("good", t0, [2]int64{100, 0}, [2]int64{400, 0}, [2]int64{1000, 0}),
		series("bad", t0, [2]int64{100, 8}, [2]int64{400, 32}, [2]int64{1000, 80})...)
	b := boundsOverTime(pts, 0.05)
	good, bad := b["good"], b["bad"]
	if len(good) != 3 || len(bad) != 3 {
		t.Fatalf("points %d and %d, want 3 each", len(good), len(bad))
	}
	for i := 1; i < 3; i++ {
		if good[i].High >= good[i-1].High {
			t.Errorf("good: upper bound did not narrow at %d: %v then %v", i, good[i-1].High, good[i].High)
		}
	}
	if good[0].High <= 0.01 || good[2].High > 0.01 {
		t.Errorf("good: upper bounds %v … %v, want above the limit at 100 pairs and below it at 1,500", good[0].High, good[2].High)
	}
	if bad[2].Low <= 0.01 || bad[2].Value != 0.08 {
		t.Errorf("bad: lower bound %v value %v, want above the 1%% limit at 8%%", bad[2].Low, bad[2].Value)
	}
}

func TestDecisionNote(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)
	pts := boundsOverTime(series("s", t0, [2]int64{250, 0}, [2]int64{250, 0}), 0.05)["s"]
	r := report.SegmentResult{Verdict: report.Inconclusive, MorePairs: 1500, AnytimeDivergence: report.Rate{Total: 500}}
	// 500 pairs in one minute: 1,500 more take three.
	if got := decisionNote(r, pts); got != "inconclusive: needs about 1,500 more pairs, about 3 min at the current pace" {
		t.Errorf("note %q", got)
	}
	if got := decisionNote(report.SegmentResult{Verdict: report.Pass}, pts); !strings.HasPrefix(got, "pass: the upper bound") {
		t.Errorf("pass note %q", got)
	}
}

func exps(n int) []ExperimentView {
	out := make([]ExperimentView, n)
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = ExperimentView{Name: fmt.Sprintf("exp-%03d", i), Rate: report.NewRate(int64(i%7), int64(100+i)), LastSeen: t0.Add(time.Duration(i%13) * time.Minute)}
	}
	return out
}

func overviewCtx(query string) echo.Context {
	return echo.New().NewContext(httptest.NewRequest("GET", "/?"+query, nil), httptest.NewRecorder())
}

func TestParseOverviewQuery(t *testing.T) {
	q, err := parseOverviewQuery(overviewCtx(""))
	if err != nil || q != (overviewQuery{Sort: "name", Dir: "asc", Page: 1}) {
		t.Errorf("defaults: %+v %v", q, err)
	}
	q, err = parseOverviewQuery(overviewCtx(url.Values{"sort": {"rate"}, "q": {" orders "}, "page": {"2"}}.Encode()))
	if err != nil || q != (overviewQuery{Search: "orders", Sort: "rate", Dir: "desc", Page: 2}) {
		t.Errorf("rate: %+v %v", q, err)
	}
	for param, v := range map[string]string{"sort": "size", "dir": "up", "page": "0", "q": strings.Repeat("x", 65)} {
		_, err := parseOverviewQuery(overviewCtx(url.Values{param: {v}}.Encode()))
		var he *echo.HTTPError
		if !errors.As(err, &he) || he.Code != 400 || !strings.Contains(fmt.Sprint(he.Message), param) {
			t.Errorf("%s=%q: %v, want a 400 naming %s", param, v, err, param)
		}
	}
	links := overviewSortLinks(overviewQuery{Search: "a b", Sort: "name", Dir: "asc", Page: 3})
	if links["name"] != "/?dir=desc&q=a+b&sort=name" || links["pairs"] != "/?dir=desc&q=a+b&sort=pairs" {
		t.Errorf("links %v", links)
	}
}

// The sample page marks the differing values in both documents, at the
// paths pkg/diff names.
func TestMarkedJSON(t *testing.T) {
	control := []byte(`{"id":"o-1","items":[{"sku":"a","price":1999},{"sku":"b","price":550}],"odd key":1,"note":"<b>"}`)
	got := string(markedJSON(control, []string{"items[1].price", `["odd key"]`}))
	for _, want := range []string{
		`<mark data-path="items[1].price">550</mark>`,
		`<mark data-path="[&#34;odd key&#34;]">1</mark>`,
		`&#34;note&#34;: &#34;\u003cb\u003e&#34;`,
		"\n  &#34;items&#34;: [\n    {\n      &#34;sku&#34;: &#34;a&#34;,",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("marked JSON lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "<mark") != 2 || strings.Contains(got, "<b>") {
		t.Errorf("want exactly two marks and nothing unescaped:\n%s", got)
	}
	if got := string(markedJSON([]byte(`[1,2]`), []string{"[1]"})); !strings.Contains(got, `<mark data-path="[1]">2</mark>`) {
		t.Errorf("root array: %s", got)
	}
	if got := string(markedJSON([]byte(`5`), []string{"$"})); got != `<mark data-path="$">5</mark>` {
		t.Errorf("root value: %s", got)
	}
	if got := string(markedJSON([]byte(`not json <x>`), nil)); got != "not json &lt;x&gt;" {
		t.Errorf("not JSON: %s", got)
	}
}

func TestSparkChartHasNoLineWithoutData(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	pts := []store.SeriesPoint{{At: t0, Pairs: 10, Divergent: 1}, {At: t0.Add(time.Hour), Pairs: 10}, {At: t0.Add(5 * time.Hour), Pairs: 10}}
	svg := string(sparkChart(pts, "x", t0.Add(23*time.Hour)))
	if strings.Count(svg, "<path ") != 1 || strings.Count(svg, "<circle") != 3 {
		t.Errorf("want one line over the first two hours and three dots:\n%s", svg)
	}
	if got := string(sparkChart(nil, "x", t0)); !strings.Contains(got, "no pairs") {
		t.Errorf("no data: %s", got)
	}
}

func counted(seg string, pairs, div int64) store.SegmentCount {
	return store.SegmentCount{Segment: seg, Attrs: map[string]string{"country": seg[len("country="):]},
		Counters: report.Counters{Pairs: pairs, Divergent: div}}
}

// The experiment page's model: rows coloured by their segment's verdict,
// the page's limit, charts with the offender first, filters applied.
func TestBuildExperimentPage(t *testing.T) {
	now := time.Date(2026, 12, 4, 23, 10, 0, 0, time.UTC)
	counts := []store.SegmentCount{counted("country=DE", 1000, 0), counted("country=IN", 1000, 80), counted("country=US", 10, 0)}
	segs := make([]report.Segment, len(counts))
	for i, c := range counts {
		segs[i] = report.Segment{Key: c.Segment, Attrs: c.Attrs, Stats: report.SegmentStats{Counters: c.Counters}}
	}
	gate := GateView{Since: now.Add(-time.Hour), Spec: GateSpecView{MaxRate: 0.01, Window: "1h", PerSegment: true},
		GateResult: report.GateResult{Verdict: report.Fail, Segments: []report.SegmentResult{
			{Segment: "country=DE", Verdict: report.Pass}, {Segment: "country=IN", Verdict: report.Fail}, {Segment: "country=US", Verdict: report.Inconclusive, MorePairs: 990}}}}
	var series []store.SeriesPoint
	for _, c := range counts {
		series = append(series, store.SeriesPoint{Segment: c.Segment, At: now.Add(-2 * time.Minute), Pairs: c.Pairs / 2, Divergent: c.Divergent / 2},
			store.SeriesPoint{Segment: c.Segment, At: now.Add(-time.Minute), Pairs: c.Pairs / 2, Divergent: c.Divergent / 2})
	}
	u, _ := url.Parse("/experiments/x?window=24h")
	d := experimentData{Name: "x", Window: "24h", Sort: "segment", Dir: "asc", URL: u, Counts: counts, Segs: segs,
		Verdict: verdictOf(gate, nil), Series: series, GateSeries: series, Step: time.Minute, GateStep: time.Minute, Now: now,
		Filters: map[string]string{}}
	p := buildExperimentPage(d)
	if p.LimitText != "limit 1%" || p.TotalClass != "fail" || len(p.Rows) != 3 || p.Total.Total != 2010 {
		t.Fatalf("page: limit %q total class %q rows %d total %d", p.LimitText, p.TotalClass, len(p.Rows), p.Total.Total)
	}
	for i, want := range []string{"pass", "fail", "inconclusive"} {
		if p.Rows[i].Class != want || p.Rows[i].Gate == nil {
			t.Errorf("row %s: class %q, want %q", p.Rows[i].Segment, p.Rows[i].Class, want)
		}
	}
	if len(p.RateCharts) != 3 || p.RateCharts[0].Segment != "country=IN" || p.RateCharts[1].Segment != "country=US" {
		t.Errorf("rate charts %+v: want the failing segment first, then the undecided", p.RateCharts)
	}
	if len(p.BoundsCharts) != 3 || !strings.HasPrefix(p.BoundsCharts[0].Note, "fail: the lower bound") {
		t.Errorf("bounds charts %+v", p.BoundsCharts)
	}
	if p.LiveURL != "/experiments/x?live=1&window=24h" || p.Live {
		t.Errorf("live %v %q", p.Live, p.LiveURL)
	}
	// A filter keeps the matching rows; the attribute choices stay whole.
	d.Filters = map[string]string{"country": "US"}
	p = buildExperimentPage(d)
	if len(p.Rows) != 1 || p.Rows[0].Segment != "country=US" || len(p.AttrValues["country"]) != 3 || len(p.RateCharts) != 1 {
		t.Errorf("filtered: %d rows, values %v, %d charts", len(p.Rows), p.AttrValues, len(p.RateCharts))
	}
}

func TestBuildOverview(t *testing.T) {
	now := time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)
	var page []store.Experiment
	for _, e := range exps(30)[25:] {
		page = append(page, store.Experiment{Name: e.Name, Pairs: e.Rate.Total, Divergent: e.Rate.Hits, LastSeen: e.LastSeen})
	}
	q := overviewQuery{Sort: "name", Dir: "asc", Page: 2}
	v := verdictOf(GateView{Spec: GateSpecView{MaxRate: 0.02, PerSegment: true}, GateResult: report.GateResult{Verdict: report.Pass}}, nil)
	p := buildOverview(pageOf(page, 30, q), 31, q, map[string]pageVerdict{"exp-025": v}, nil, map[string]string{"exp-026": "step 1 of 3, active"}, now)
	if p.Total != 31 || p.Matched != 30 || p.Page != 2 || p.Pages != 2 || len(p.Rows) != 5 || p.NextURL != "" || p.PrevURL != "/?dir=asc&sort=name" {
		t.Fatalf("page: total %d page %d/%d rows %d prev %q next %q", p.Total, p.Page, p.Pages, len(p.Rows), p.PrevURL, p.NextURL)
	}
	if r := p.Rows[0]; r.Name != "exp-025" || r.Verdict != report.Pass || r.Class != "pass" || r.Limit != 0.02 || !r.PerSegment {
		t.Errorf("judged row: %+v", r)
	}
	if r := p.Rows[1]; r.Class != "unjudged" || r.Rollout != "step 1 of 3, active" || !strings.Contains(string(r.Spark), "no pairs") {
		t.Errorf("unjudged row: %+v", r)
	}
}

func TestBuildSamplePage(t *testing.T) {
	x := store.Sample{ID: 7, Experiment: "orders-db", Operation: "GetOrder", Segment: "country=IN,plan=pro", Paths: []string{"items[1].price"},
		Control:   []byte(`{"value":{"items":[{"price":1},{"price":550}]},"duration_ns":5}`),
		Candidate: []byte(`{"value":{"items":[{"price":1},{"price":549}]},"error":"late"}`)}
	p := buildSamplePage(x)
	if p.BackURL != "/experiments/orders-db?operation=GetOrder&segment=country%3DIN%2Cplan%3Dpro&window=all#samples" {
		t.Errorf("back %q", p.BackURL)
	}
	if !strings.Contains(string(p.Control), `<mark data-path="items[1].price">550</mark>`) || !strings.Contains(string(p.Candidate), `<mark data-path="items[1].price">549</mark>`) {
		t.Errorf("marks: %s / %s", p.Control, p.Candidate)
	}
	if p.ControlNote != `{"duration_ns":5}` || p.CandidateNote != `{"error":"late"}` || p.Title != "Sample 7" {
		t.Errorf("notes %q %q title %q", p.ControlNote, p.CandidateNote, p.Title)
	}
}
