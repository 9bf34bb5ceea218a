// Package charts lays out and draws the dashboard's SVG charts: rates over
// time, one small chart per segment on a shared scale, and the promotion
// gate's anytime-valid bounds over time against its limit.
//
// Guarantees, each checked by the package's tests:
//   - The time axis fits the data: it runs from the first point to the last
//     (padded by one step when there is a single point), never over an empty
//     window, and its ticks fall on round times inside it.
//   - A line is drawn only through points with data: a step without a point
//     breaks the line, so "no pairs" never reads as "0%".
//   - The rate axis starts at 0 and ends at a round value above every point
//     and above the limit, so the limit line is always in view.
//
// Layout (axes, ticks, point coordinates) is computed by [Lines] and
// [Bounds] into a [Chart], a plain value the tests inspect; [Chart.SVG]
// draws it with html/template, which escapes every name.
package charts

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is a value at a time, where there were data.
type Point struct {
	At    time.Time
	Value float64
}

// Series is one named line.
type Series struct {
	Name   string
	Points []Point // in time order
	// Class colours the line: "fail", "pass", "inconclusive" or "" (neutral).
	Class string
}

// BoundPoint is the gate's view of one unit at a time: the observed rate
// and the anytime-valid bounds the verdict rests on.
type BoundPoint struct {
	At               time.Time
	Value, Low, High float64
}

// Options shape a chart. The zero value is a 760×240 chart fitted to its
// data.
type Options struct {
	Title string
	// Width and Height in SVG units; default 760×240.
	Width, Height float64
	// Step is the width of a bucket: consecutive points further apart than
	// Step are not joined. Zero joins every point.
	Step time.Duration
	// Limit, when positive, is drawn as a dashed line and kept in view.
	Limit float64
	// YMax, when positive, fixes the top of the rate axis, rounded up (small
	// multiples share one scale); it is still raised to keep Limit in view.
	YMax float64
	// Until, when after the last point, extends the time axis to it (a
	// chart that ends "now"); From, when before the first point, starts it
	// there (charts side by side that share a time axis).
	From, Until time.Time
}

// Tick is an axis mark at Pos (SVG units) with its label.
type Tick struct {
	Pos   float64
	Label string
}

// XY is a position in SVG units.
type XY struct{ X, Y float64 }

// Line is a series laid out: one path per run of points with data.
type Line struct {
	Name  string
	Class string
	Runs  [][]XY
	Dots  []XY
}

// Chart is a laid-out chart: everything [Chart.SVG] draws, in SVG units.
type Chart struct {
	Title          string
	Width, Height  float64
	Left, Right    float64 // plot area, x
	Top, Bottom    float64 // plot area, y (Top < Bottom)
	From, To       time.Time
	YMax           float64
	XTicks, YTicks []Tick
	Lines          []Line
	Band           []XY // polygon between the bounds; empty without
	LimitY         float64
	LimitLabel     string
	Empty          bool // no data: draws a note instead
	EmptyText      string
	Spark          bool // a sparkline: no axes
}

const (
	defaultWidth, defaultHeight = 760.0, 240.0
	padLeft, padRight           = 52.0, 12.0
	padTop, padBottom           = 10.0, 24.0
)

// Lines lays out rate series over a shared time axis fitted to their data.
func Lines(series []Series, o Options) Chart {
	var ats []time.Time
	top := 0.0
	for _, s := range series {
		for _, p := range s.Points {
			ats = append(ats, p.At)
			top = math.Max(top, p.Value)
		}
	}
	c := frame(o, ats, top)
	if c.Empty {
		return c
	}
	for _, s := range series {
		c.Lines = append(c.Lines, c.line(s.Name, s.Class, s.Points, o.Step))
	}
	return c
}

// Bounds lays out the gate's view of one unit over time: the band between
// its anytime-valid bounds, the observed rate and the limit. The band
// narrows as pairs accumulate; the unit passes once the band's top is below
// the limit and fails once its bottom is above it.
func Bounds(name string, pts []BoundPoint, o Options) Chart {
	var ats []time.Time
	top := 0.0
	for _, p := range pts {
		ats = append(ats, p.At)
		top = math.Max(top, p.Value)
	}
	// Early bounds are wide (up to 100%); the axis shows the region that
	// decides: a few times the limit, or the observed rate with room.
	top = math.Max(top*1.5, o.Limit*3)
	if o.YMax == 0 {
		o.YMax = niceCeil(top)
	}
	c := frame(o, ats, top)
	if c.Empty {
		return c
	}
	values := make([]Point, len(pts))
	var upper, lower []XY
	for i, p := range pts {
		values[i] = Point{p.At, p.Value}
		x := c.x(p.At)
		upper = append(upper, XY{x, c.y(math.Min(p.High, c.YMax))})
		lower = append(lower, XY{x, c.y(math.Min(p.Low, c.YMax))})
	}
	for i := len(lower) - 1; i >= 0; i-- {
		upper = append(upper, lower[i])
	}
	c.Band = upper
	c.Lines = append(c.Lines, c.line(name, "", values, 0))
	return c
}

// Spark lays out a sparkline: one series, no axes, 120×24 unless Options
// say otherwise; the scale runs from 0 to the largest value (or Limit).
func Spark(pts []Point, o Options) Chart {
	if o.Width == 0 {
		o.Width, o.Height = 120, 24
	}
	top := 0.0
	var ats []time.Time
	for _, p := range pts {
		ats = append(ats, p.At)
		top = math.Max(top, p.Value)
	}
	c := frame(o, ats, top)
	c.Left, c.Right, c.Top, c.Bottom = 1, o.Width-1, 2, o.Height-2
	c.XTicks, c.YTicks, c.LimitLabel = nil, nil, ""
	c.Spark = true
	if !c.Empty {
		c.Lines = []Line{c.line(o.Title, "", pts, o.Step)}
	}
	return c
}

// frame sets up the axes for points at ats with values up to top.
func frame(o Options, ats []time.Time, top float64) Chart {
	if o.Width == 0 {
		o.Width = defaultWidth
	}
	if o.Height == 0 {
		o.Height = defaultHeight
	}
	c := Chart{Title: o.Title, Width: o.Width, Height: o.Height,
		Left: padLeft, Right: o.Width - padRight, Top: padTop, Bottom: o.Height - padBottom}
	if len(ats) == 0 {
		c.Empty, c.EmptyText = true, "No pairs yet."
		return c
	}
	c.From, c.To = ats[0], ats[0]
	for _, t := range ats {
		if t.Before(c.From) {
			c.From = t
		}
		if t.After(c.To) {
			c.To = t
		}
	}
	if o.Until.After(c.To) {
		c.To = o.Until
	}
	if !o.From.IsZero() && o.From.Before(c.From) {
		c.From = o.From
	}
	if !c.To.After(c.From) {
		pad := max(o.Step, time.Minute)
		c.From, c.To = c.From.Add(-pad), c.To.Add(pad)
	}
	c.YMax = niceCeil(math.Max(top, 0.0001))
	if o.YMax > 0 {
		c.YMax = niceCeil(o.YMax)
	}
	if o.Limit > 0 && o.Limit*1.1 > c.YMax {
		c.YMax = niceCeil(o.Limit * 1.1)
	}
	for i := 0; i <= 4; i++ {
		v := c.YMax * float64(i) / 4
		c.YTicks = append(c.YTicks, Tick{c.y(v), Percent(v)})
	}
	c.XTicks = timeTicks(c.From, c.To, c.x, max(2, int((c.Right-c.Left)/70)))
	if o.Limit > 0 {
		c.LimitY, c.LimitLabel = c.y(o.Limit), "limit "+Percent(o.Limit)
	}
	return c
}

func (c Chart) x(t time.Time) float64 {
	span := c.To.Sub(c.From).Seconds()
	return round1(c.Left + (c.Right-c.Left)*t.Sub(c.From).Seconds()/span)
}

func (c Chart) y(v float64) float64 {
	return round1(c.Bottom - (c.Bottom-c.Top)*v/c.YMax)
}

// line lays out points, breaking the line where consecutive points are
// more than step apart.
func (c Chart) line(name, class string, pts []Point, step time.Duration) Line {
	l := Line{Name: name, Class: class}
	var run []XY
	for i, p := range pts {
		if i > 0 && step > 0 && p.At.Sub(pts[i-1].At) > step {
			if len(run) > 1 {
				l.Runs = append(l.Runs, run)
			}
			run = nil
		}
		xy := XY{c.x(p.At), c.y(math.Min(p.Value, c.YMax))}
		run = append(run, xy)
		l.Dots = append(l.Dots, xy)
	}
	if len(run) > 1 {
		l.Runs = append(l.Runs, run)
	}
	return l
}

// timeTicks puts ticks on round times between from and to: at most most+1,
// so that labels never run into each other (a label needs about 70 units).
func timeTicks(from, to time.Time, x func(time.Time) float64, most int) []Tick {
	span := to.Sub(from)
	every := []time.Duration{10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
		5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
		3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour}
	step := every[len(every)-1]
	for _, e := range every {
		if span/e <= time.Duration(min(most, 6)) {
			step = e
			break
		}
	}
	layout := "15:04"
	switch {
	case step < time.Minute:
		layout = "15:04:05"
	case step >= 24*time.Hour:
		layout = "Jan 2"
	case span >= 24*time.Hour:
		layout = "Jan 2 15:04"
	}
	var out []Tick
	for t := from.UTC().Truncate(step); !t.After(to); t = t.Add(step) {
		if t.Before(from) {
			continue
		}
		out = append(out, Tick{x(t), t.UTC().Format(layout)})
	}
	return out
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*e*(1+1e-9) {
			return m * e
		}
	}
	return 10 * e
}

// Percent formats a rate (0.08) as a percentage with at most three
// significant digits and no trailing zeros: "8%", "0.1%", "12.5%".
func Percent(v float64) string {
	if v == 0 {
		return "0%"
	}
	p := v * 100
	digits := max(0, 2-int(math.Floor(math.Log10(math.Abs(p)))))
	s := strconv.FormatFloat(p, 'f', digits, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + "%"
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

//go:embed chart.svg.tmpl
var files embed.FS

var tpl = template.Must(template.New("chart.svg.tmpl").Funcs(template.FuncMap{
	"path": func(run []XY) string {
		var b strings.Builder
		for i, p := range run {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&b, "%s%g,%g ", cmd, p.X, p.Y)
		}
		return strings.TrimSpace(b.String())
	},
	"points": func(ps []XY) string {
		parts := make([]string, len(ps))
		for i, p := range ps {
			parts[i] = fmt.Sprintf("%g,%g", p.X, p.Y)
		}
		return strings.Join(parts, " ")
	},
}).ParseFS(files, "chart.svg.tmpl"))

// SVG draws the chart.
func (c Chart) SVG() template.HTML {
	var b bytes.Buffer
	if err := tpl.Execute(&b, c); err != nil {
		// The template and its data are fixed: an error is a bug.
		return template.HTML(`<p class="muted">chart unavailable</p>`)
	}
	return template.HTML(b.String())
}
