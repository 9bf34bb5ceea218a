package charts

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 23, 20, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// The time axis fits the data: a fresh run with five minutes of data spans
// five minutes, not the whole 24-hour window, and its ticks are round
// times inside it.
func TestTimeAxisFitsTheData(t *testing.T) {
	c := Lines([]Series{{Name: "a", Points: []Point{{at(0), 0}, {at(1), 0}, {at(2), 0.01}, {at(5), 0}}}}, Options{Step: time.Minute})
	if !c.From.Equal(at(0)) || !c.To.Equal(at(5)) {
		t.Fatalf("axis %v – %v, want the data's %v – %v", c.From, c.To, at(0), at(5))
	}
	var labels []string
	for _, tk := range c.XTicks {
		labels = append(labels, tk.Label)
		if tk.Pos < c.Left || tk.Pos > c.Right {
			t.Errorf("tick %q at %v is outside the plot %v–%v", tk.Label, tk.Pos, c.Left, c.Right)
		}
	}
	if got, want := strings.Join(labels, " "), "23:20 23:21 23:22 23:23 23:24 23:25"; got != want {
		t.Errorf("ticks %q, want %q", got, want)
	}
	// The first and the last point sit at the plot's edges.
	dots := c.Lines[0].Dots
	if dots[0].X != c.Left || dots[len(dots)-1].X != c.Right {
		t.Errorf("first and last point at x %v and %v, want the edges %v and %v", dots[0].X, dots[len(dots)-1].X, c.Left, c.Right)
	}
}

func TestTimeTicksAcrossSpans(t *testing.T) {
	for _, tt := range []struct {
		span  time.Duration
		first string
		n     int
	}{
		{50 * time.Second, "23:20:00", 6},  // 10 s ticks
		{3 * time.Hour, "23:30", 6},        // 30 min ticks, from the first round time inside
		{30 * time.Hour, "Dec 5 00:00", 5}, // 6 h ticks, with the date
		{20 * 24 * time.Hour, "Dec 7", 3},  // 7 d ticks
	} {
		c := Lines([]Series{{Points: []Point{{t0, 0}, {t0.Add(tt.span), 0}}}}, Options{})
		if len(c.XTicks) == 0 || c.XTicks[0].Label != tt.first || len(c.XTicks) > 7 {
			t.Errorf("span %v: ticks %+v, want the first %q and at most 7", tt.span, c.XTicks, tt.first)
		}
	}
}

// A single point gets an axis padded by a step either side, not a zero
// span.
// Small charts get fewer ticks, so labels never overlap.
func TestTicksFitTheWidth(t *testing.T) {
	c := Lines([]Series{{Points: []Point{{t0, 0}, {t0.Add(90 * time.Second), 0}}}}, Options{Width: 380, Height: 130})
	if len(c.XTicks) > 5 || len(c.XTicks) < 2 {
		t.Fatalf("%d ticks on a 380-wide chart: %+v", len(c.XTicks), c.XTicks)
	}
	for i := 1; i < len(c.XTicks); i++ {
		if gap := c.XTicks[i].Pos - c.XTicks[i-1].Pos; gap < 60 {
			t.Errorf("ticks %q and %q only %v apart", c.XTicks[i-1].Label, c.XTicks[i].Label, gap)
		}
	}
}

func TestSinglePoint(t *testing.T) {
	c := Lines([]Series{{Name: "a", Points: []Point{{at(3), 0.08}}}}, Options{Step: time.Minute})
	if !c.From.Equal(at(2)) || !c.To.Equal(at(4)) {
		t.Fatalf("axis %v – %v, want a minute either side of %v", c.From, c.To, at(3))
	}
	if d := c.Lines[0].Dots; len(d) != 1 || d[0].X != (c.Left+c.Right)/2 {
		t.Errorf("dots %+v, want one in the middle", d)
	}
	if len(c.Lines[0].Runs) != 0 {
		t.Errorf("runs %+v: a single point draws a dot, no line", c.Lines[0].Runs)
	}
}

// No line where there are no data: a missing step breaks the line.
func TestGapsBreakTheLine(t *testing.T) {
	pts := []Point{{at(0), 0}, {at(1), 0}, {at(2), 0}, {at(6), 0}, {at(7), 0}, {at(9), 0}}
	c := Lines([]Series{{Name: "a", Points: pts}}, Options{Step: time.Minute})
	l := c.Lines[0]
	if len(l.Runs) != 2 || len(l.Runs[0]) != 3 || len(l.Runs[1]) != 2 || len(l.Dots) != 6 {
		t.Fatalf("runs %v dots %d: want runs of 3 and 2 points (the lone last point only a dot) and 6 dots", l.Runs, len(l.Dots))
	}
	svg := string(c.SVG())
	if n := strings.Count(svg, "<path "); n != 2 {
		t.Errorf("%d paths drawn, want 2:\n%s", n, svg)
	}
}

// The rate axis starts at 0, ends at a round value above the data and the
// limit, and the limit is drawn where it is.
func TestRateAxisAndLimit(t *testing.T) {
	for _, tt := range []struct {
		top, limit float64
		ymax       float64
		labels     string
	}{
		{0.08, 0.01, 0.1, "0% 2.5% 5% 7.5% 10%"},
		{0, 0.01, 0.02, "0% 0.5% 1% 1.5% 2%"}, // all zero: the limit sets the scale
		{0.003, 0, 0.005, "0% 0.125% 0.25% 0.375% 0.5%"},
	} {
		c := Lines([]Series{{Points: []Point{{at(0), 0}, {at(1), tt.top}}}}, Options{Limit: tt.limit})
		var labels []string
		for _, tk := range c.YTicks {
			labels = append(labels, tk.Label)
		}
		if c.YMax != tt.ymax || strings.Join(labels, " ") != tt.labels {
			t.Errorf("top %v limit %v: y max %v ticks %q, want %v %q", tt.top, tt.limit, c.YMax, strings.Join(labels, " "), tt.ymax, tt.labels)
		}
		if tt.limit > 0 {
			want := c.Bottom - (c.Bottom-c.Top)*tt.limit/c.YMax
			if c.LimitY < want-0.1 || c.LimitY > want+0.1 || c.LimitLabel != "limit "+Percent(tt.limit) {
				t.Errorf("limit at %v %q, want %v", c.LimitY, c.LimitLabel, want)
			}
		}
	}
	c := Lines([]Series{{Points: []Point{{at(0), 0}, {at(1), 0.08}}}}, Options{})
	if d := c.Lines[0].Dots; d[0].Y != c.Bottom || d[1].Y != round1(c.Bottom-(c.Bottom-c.Top)*0.8) {
		t.Errorf("points %+v: want 0 on the axis and 8%% at 0.8 of a 10%% scale", d)
	}
}

// The gate's bounds: the band runs along the upper bounds and back along
// the lower ones, clipped to the axis; the limit stays in view.
func TestBounds(t *testing.T) {
	pts := []BoundPoint{
		{At: at(0), Value: 0, Low: 0, High: 1},
		{At: at(1), Value: 0, Low: 0, High: 0.02},
		{At: at(2), Value: 0, Low: 0, High: 0.005},
	}
	c := Bounds("country=US,plan=free", pts, Options{Limit: 0.01})
	if c.YMax != 0.05 || len(c.Band) != 6 {
		t.Fatalf("y max %v band %v: want 5%% (three times the limit, rounded) and 6 corners", c.YMax, c.Band)
	}
	if c.Band[0].Y != c.Top {
		t.Errorf("an upper bound of 100%% at y %v, want clipped to the top %v", c.Band[0].Y, c.Top)
	}
	if c.Band[2].Y <= c.LimitY {
		t.Errorf("the last upper bound (0.5%%) at y %v is not below the limit line at %v", c.Band[2].Y, c.LimitY)
	}
	if c.Band[3].Y != c.Bottom || c.Band[5].Y != c.Bottom {
		t.Errorf("lower bounds of 0 at %v and %v, want the axis %v", c.Band[3].Y, c.Band[5].Y, c.Bottom)
	}
	svg := string(c.SVG())
	for _, want := range []string{`<polygon class="band"`, `class="limit"`, "limit 1%", `data-series="country=US,plan=free"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q:\n%s", want, svg)
		}
	}
}

func TestEmptyAndEscaped(t *testing.T) {
	if c := Lines(nil, Options{}); !c.Empty || !strings.Contains(string(c.SVG()), "No pairs yet") {
		t.Errorf("no data: %+v", c)
	}
	svg := string(Lines([]Series{{Name: `<script>x</script>`, Points: []Point{{at(0), 0}}}}, Options{Title: `a"b`}).SVG())
	if strings.Contains(svg, "<script>") || strings.Contains(svg, `a"b`) {
		t.Errorf("names not escaped:\n%s", svg)
	}
}

func TestPercent(t *testing.T) {
	for v, want := range map[float64]string{0: "0%", 0.08: "8%", 0.001: "0.1%", 0.125: "12.5%", 0.0565: "5.65%", 1: "100%", 0.00012: "0.012%"} {
		if got := Percent(v); got != want {
			t.Errorf("Percent(%v) = %q, want %q", v, got, want)
		}
	}
}
