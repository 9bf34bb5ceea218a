package diff

import (
	"math"
	"time"
)

// instant is a point in time as Unix seconds and nanoseconds.
type instant struct {
	sec  int64
	nsec int64
}

// closeTo reports whether a and b are at most tol apart.
func (a instant) closeTo(b instant, tol time.Duration) bool {
	ds := a.sec - b.sec
	if ds > math.MaxInt64/4 || ds < -math.MaxInt64/4 {
		return false
	}
	limit := int64(tol)/1e9 + 2
	if ds > limit || ds < -limit {
		return false
	}
	d := ds*1e9 + (a.nsec - b.nsec)
	if d < 0 {
		d = -d
	}
	return d <= int64(tol)
}

// timeOf reads node i as a time under rule r: an RFC 3339 string, or an
// epoch number or numeric string.
func (w *walker) timeOf(d *doc, i uint32, r *timeRule, buf *[]byte) (instant, bool) {
	n := &d.tape[i]
	switch n.kind() {
	case kNumber:
		return epoch(d.src[n.start:n.end], r.unit)
	case kString:
		s := w.strContent(d, i, buf)
		if isNumber(s) {
			return epoch(s, r.unit)
		}
		return parseRFC3339(s)
	}
	return instant{}, false
}

// epoch reads a JSON number literal as Unix seconds or milliseconds.
func epoch(b []byte, unit int) (instant, bool) {
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i = 1
	}
	var ip int64
	for ; i < len(b) && isDigit(b[i]); i++ {
		if ip > (math.MaxInt64-9)/10 {
			return instant{}, false
		}
		ip = ip*10 + int64(b[i]-'0')
	}
	var frac []byte
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for i = j; i < len(b) && isDigit(b[i]); i++ {
		}
		frac = b[j:i]
	}
	if i < len(b) { // an exponent: go through float64
		f, ok := parseFloat(b)
		if !ok || math.Abs(f) > 1e17 {
			return instant{}, false
		}
		neg = f < 0
		f = math.Abs(f)
		ip = int64(f)
		fr := f - float64(ip)
		if ms(unit, ip) {
			return mkInstant(neg, ip/1000, (ip%1000)*1e6+int64(fr*1e6))
		}
		return mkInstant(neg, ip, int64(fr*1e9))
	}
	if ms(unit, ip) {
		// ip milliseconds plus a fraction of a millisecond.
		nsec := (ip%1000)*1e6 + fracNanos(frac, 6)
		return mkInstant(neg, ip/1000, nsec)
	}
	return mkInstant(neg, ip, fracNanos(frac, 9))
}

func ms(unit int, ip int64) bool {
	switch unit {
	case 1:
		return false
	case 2:
		return true
	}
	return ip >= 1e11
}

// fracNanos reads up to digits digits of a decimal fraction, scaled so that
// digits digits make an integer (9 for nanoseconds of a second).
func fracNanos(frac []byte, digits int) int64 {
	var v int64
	for k := 0; k < digits; k++ {
		v *= 10
		if k < len(frac) {
			v += int64(frac[k] - '0')
		}
	}
	return v
}

// mkInstant builds ±(sec + nsec/1e9), bounded to the years time.Time can
// represent comfortably.
func mkInstant(neg bool, sec, nsec int64) (instant, bool) {
	if sec > 1<<40 {
		return instant{}, false
	}
	if neg {
		sec, nsec = -sec, -nsec
		if nsec < 0 {
			sec--
			nsec += 1e9
		}
	}
	return instant{sec, nsec}, true
}

// parseRFC3339 reads YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM); 't' or a
// space may separate date and time, and 'z' stands for 'Z'.
func parseRFC3339(s []byte) (instant, bool) {
	if len(s) < 20 {
		return instant{}, false
	}
	num := func(b []byte) (int, bool) {
		v := 0
		for _, c := range b {
			if !isDigit(c) {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	hour, ok4 := num(s[11:13])
	minute, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return instant{}, false
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return instant{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 60 {
		return instant{}, false
	}
	i := 19
	var nsec int64
	if s[i] == '.' {
		j := i + 1
		for i = j; i < len(s) && isDigit(s[i]); i++ {
		}
		if i == j {
			return instant{}, false
		}
		nsec = fracNanos(s[j:i], 9)
	}
	if i >= len(s) {
		return instant{}, false
	}
	var off int
	switch s[i] {
	case 'Z', 'z':
		if i+1 != len(s) {
			return instant{}, false
		}
	case '+', '-':
		if len(s)-i != 6 || s[i+3] != ':' {
			return instant{}, false
		}
		oh, ok1 := num(s[i+1 : i+3])
		om, ok2 := num(s[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return instant{}, false
		}
		off = oh*3600 + om*60
		if s[i] == '-' {
			off = -off
		}
	default:
		return instant{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	return instant{t.Unix() - int64(off), nsec}, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
