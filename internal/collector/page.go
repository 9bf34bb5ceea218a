package collector

import (
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

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
	// Class colours the rate: the segment's verdict ("pass", "fail",
	// "inconclusive"), or "unjudged".
	Class   string
	Latency latencyCells
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
