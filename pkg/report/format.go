package report

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// pct formats a proportion as a percentage with up to three significant
// digits: 0.0031 is "0.31%", 0.01 is "1%".
func pct(p float64) string {
	v := p * 100
	if v != 0 && math.Abs(v) < 0.001 {
		return strconv.FormatFloat(v, 'e', 2, 64) + "%"
	}
	return strconv.FormatFloat(sig(v, 3), 'f', -1, 64) + "%"
}

// times formats a ratio as "2.31×".
func times(r float64) string {
	if r >= 1000 {
		return strconv.FormatFloat(math.Round(r), 'f', -1, 64) + "×"
	}
	return strconv.FormatFloat(sig(r, 3), 'f', -1, 64) + "×"
}

// sig rounds v to n significant digits.
func sig(v float64, n int) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	s, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', n, 64), 64)
	if err != nil {
		return v
	}
	return s
}

// count formats n with thousands separators: 12345 is "12,345".
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// approx formats n rounded to two significant digits: 3137 is "3,100".
func approx(n int64) string {
	return count(int64(sig(float64(n), 2)))
}

// dur formats d with three significant digits: "14.2ms".
func dur(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	unit := time.Duration(1)
	for p := time.Duration(1000); p <= d; p *= 10 {
		unit *= 10
	}
	return d.Round(unit).String()
}
