package diff

import (
	"math"
	"strconv"
)

// decimal is a JSON number literal in canonical form: value =
// ±0.d1d2…dn × 10^exp with d1 ≠ 0 and dn ≠ 0. The digits are the
// concatenation of hi and lo, both views into the literal.
type decimal struct {
	hi, lo []byte
	exp    int64
	neg    bool
	zero   bool
	huge   bool // the exponent is too large to compare arithmetically
}

// maxExp bounds the exponents compared arithmetically; beyond it a number is
// compared by its literal text.
const maxExp = 1 << 50

// parseDecimal canonicalises a valid JSON number literal.
func parseDecimal(b []byte) (d decimal) {
	i := 0
	if b[0] == '-' {
		d.neg = true
		i = 1
	}
	is := i
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	intPart := b[is:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		fs := i + 1
		i = fs
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		frac = b[fs:i]
	}
	var exp int64
	if i < len(b) {
		i++ // 'e' or 'E'
		eneg := false
		if b[i] == '+' || b[i] == '-' {
			eneg = b[i] == '-'
			i++
		}
		for ; i < len(b); i++ {
			exp = exp*10 + int64(b[i]-'0')
			if exp > maxExp {
				d.huge = true
				exp = maxExp
			}
		}
		if eneg {
			exp = -exp
		}
	}
	// Strip leading zeros from the integer part.
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	if len(intPart) > 0 {
		exp += int64(len(intPart))
		// Strip trailing zeros: from the fraction, then from the integer part.
		for len(frac) > 0 && frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		if len(frac) == 0 {
			for intPart[len(intPart)-1] == '0' {
				intPart = intPart[:len(intPart)-1]
			}
		}
		d.hi, d.lo, d.exp = intPart, frac, exp
		return d
	}
	z := 0
	for z < len(frac) && frac[z] == '0' {
		z++
	}
	frac = frac[z:]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(frac) == 0 {
		d.zero = true
		return d
	}
	d.hi, d.exp = frac, exp-int64(z)
	return d
}

// numEqual reports whether two valid JSON number literals denote the same
// decimal value, exactly: no rounding to float64, so 12345678901234567890 and
// 12345678901234567891 differ and 1e400 equals 10e399. Zero equals minus zero.
func numEqual(a, b []byte) bool {
	if string(a) == string(b) {
		return true
	}
	// Most numbers have no exponent: compare them by their canonical text.
	if x, ok := canonPlain(a); ok {
		if y, ok := canonPlain(b); ok {
			return string(x) == string(y)
		}
	}
	x, y := parseDecimal(a), parseDecimal(b)
	if x.zero || y.zero {
		return x.zero && y.zero
	}
	if x.huge || y.huge {
		return false // the literals differ and the exponents are out of reach
	}
	if x.neg != y.neg || x.exp != y.exp || len(x.hi)+len(x.lo) != len(y.hi)+len(y.lo) {
		return false
	}
	n := len(x.hi) + len(x.lo)
	for k := 0; k < n; k++ {
		if x.digit(k) != y.digit(k) {
			return false
		}
	}
	return true
}

// canonPlain returns a valid JSON number literal without an exponent in a
// canonical form (no trailing zeros in the fraction, no "-" on zero), so
// that two such literals are equal numbers exactly when their canonical
// forms are the same text; ok is false when the literal has an exponent.
func canonPlain(b []byte) (c []byte, ok bool) {
	dot := -1
	for i, ch := range b {
		switch ch {
		case 'e', 'E':
			return nil, false
		case '.':
			dot = i
		}
	}
	if dot >= 0 {
		end := len(b)
		for end > dot+1 && b[end-1] == '0' {
			end--
		}
		if end == dot+1 {
			end = dot
		}
		b = b[:end]
	}
	if len(b) == 2 && b[0] == '-' && b[1] == '0' {
		b = b[1:]
	}
	return b, true
}

func (d *decimal) digit(k int) byte {
	if k < len(d.hi) {
		return d.hi[k]
	}
	return d.lo[k-len(d.hi)]
}

// parseFloat converts a valid JSON number literal to float64. ok is false
// when the value is out of float64 range.
func parseFloat(b []byte) (f float64, ok bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// within reports whether x and y are equal within the tolerance: |x−y| ≤
// max(abs, rel × min(|x|, |y|)), the definition of cmpopts.EquateApprox.
func within(x, y, abs, rel float64) bool {
	if x == y {
		return true
	}
	d := math.Abs(x - y)
	return d <= abs || d <= rel*math.Min(math.Abs(x), math.Abs(y))
}
