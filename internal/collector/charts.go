package collector

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/parityhq/parity/internal/store"
)

// palette holds line colours distinguishable on white and in grey scale
// order (dark to light), so charts stay readable without colour.
var palette = []string{"#0550ae", "#b42318", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7d8c", "#57606a"}

// sparkline draws rates (0..1) as a small line, scaled to the largest.
func sparkline(rates []float64, label string) template.HTML {
	const w, h = 120.0, 24.0
	if len(rates) == 0 {
		return template.HTML(`<span class="muted">no data</span>`)
	}
	top := 0.0
	for _, r := range rates {
		top = math.Max(top, r)
	}
	if top == 0 {
		top = 1
	}
	var pts []string
	for i, r := range rates {
		x := w * float64(i) / math.Max(1, float64(len(rates)-1))
		y := h - 2 - (h-4)*r/top
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s"><title>%s</title><polyline fill="none" stroke="#0550ae" stroke-width="1.5" points="%s"/></svg>`,
		w, h, w, h, template.HTMLEscapeString(label), template.HTMLEscapeString(label), strings.Join(pts, " ")))
}

// rateChart draws each segment's divergence rate per time bucket as a line,
// with axes, gridlines and a legend. Buckets without pairs leave a gap.
func rateChart(points []store.SeriesPoint, since, until time.Time, step time.Duration) template.HTML {
	const w, h, left, right, top, bottom = 760.0, 240.0, 56.0, 12.0, 12.0, 28.0
	bySeg := map[string]map[int64]store.SeriesPoint{}
	maxRate := 0.0
	for _, p := range points {
		if bySeg[p.Segment] == nil {
			bySeg[p.Segment] = map[int64]store.SeriesPoint{}
		}
		bySeg[p.Segment][p.At.Unix()] = p
		if p.Pairs > 0 {
			maxRate = math.Max(maxRate, float64(p.Divergent)/float64(p.Pairs))
		}
	}
	if len(bySeg) == 0 {
		return template.HTML(`<p class="muted">No pairs in this window.</p>`)
	}
	if maxRate == 0 {
		maxRate = 0.01
	}
	maxRate = niceCeil(maxRate)
	segs := make([]string, 0, len(bySeg))
	for s := range bySeg {
		segs = append(segs, s)
	}
	sort.Strings(segs)
	start := since.Truncate(step)
	n := int(until.Sub(start)/step) + 1
	x := func(i int) float64 { return left + (w-left-right)*float64(i)/math.Max(1, float64(n-1)) }
	y := func(r float64) float64 { return top + (h-top-bottom)*(1-r/maxRate) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="chart-title"><title id="chart-title">Divergence rate per segment, %s per point</title>`, w, h, step)
	for i := 0; i <= 4; i++ {
		r := maxRate * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#d0d7de"/><text x="%.0f" y="%.1f" text-anchor="end" font-size="11" fill="#57606a">%.2f%%</text>`,
			left, w-right, y(r), y(r), left-6, y(r)+4, r*100)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" fill="#57606a">%s</text><text x="%.0f" y="%.0f" text-anchor="end" font-size="11" fill="#57606a">%s</text>`,
		left, h-8, start.UTC().Format("Jan 2 15:04"), w-right, h-8, until.UTC().Format("Jan 2 15:04 MST"))
	for k, seg := range segs {
		color := palette[k%len(palette)]
		var path, dots strings.Builder
		pen := false
		for i := range n {
			p, ok := bySeg[seg][start.Add(time.Duration(i)*step).Unix()]
			if !ok || p.Pairs == 0 {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			px, py := x(i), y(float64(p.Divergent)/float64(p.Pairs))
			fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, px, py)
			fmt.Fprintf(&dots, `<circle cx="%.1f" cy="%.1f" r="2.2" fill="%s"/>`, px, py, color)
			pen = true
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.8" data-segment="%s"><title>%s</title></path>`,
			path.String(), color, template.HTMLEscapeString(seg), template.HTMLEscapeString(seg))
		b.WriteString(dots.String())
	}
	b.WriteString(`</svg><ul class="legend">`)
	for k, seg := range segs {
		fmt.Fprintf(&b, `<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="%s"/></svg> %s</li>`, palette[k%len(palette)], template.HTMLEscapeString(seg))
	}
	b.WriteString(`</ul>`)
	return template.HTML(b.String())
}

// niceCeil rounds a rate up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}

// chartStep picks the bucket width for a window: about 60 points.
func chartStep(window time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if window/s <= 96 {
			return s
		}
	}
	return 24 * time.Hour
}
