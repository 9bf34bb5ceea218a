// Package secret judges the secrets an operator configures — static bearer
// tokens, keys that sign sessions, passwords inside URLs — before a process
// starts with them. It refuses known placeholders (the CHANGE-ME values of
// example files), values too short for their use, and guessable ones (a
// repeated sequence, a run of consecutive characters, too few different
// characters), with an error that names the problem and how to make a good
// value, and never contains the value.
//
// The checks look at the value alone, so they cannot prove a value random;
// they are set so that a random value of the required length passes with
// overwhelming probability.
package secret

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"unicode"
)

// ErrWeak reports a configured secret (a static token, a session
// secret) that is a known placeholder, too short or guessable. Its messages
// never contain the secret.
var ErrWeak = errors.New("secret: weak secret")

// Strength is what a configured secret must have to be accepted.
type Strength struct {
	// MinLen is the fewest bytes.
	MinLen int
	// MinBits is the least estimated entropy: the value's length times the
	// Shannon entropy of its characters. It is an estimate from the value
	// alone, so it is set well below what a random value of MinLen bytes
	// has; it refuses values like "aaaa…" and "abab…", not short random
	// ones.
	MinBits float64
	// Make says how to make a good one, for the error.
	Make string
}

// The strengths Parity asks of its configured secrets.
var (
	// Token is for static bearer tokens: 16 or more characters.
	Token = Strength{MinLen: 16, MinBits: 32, Make: "openssl rand -hex 24, or parityctl token create"}
	// SigningKey is for keys that sign: 32 or more bytes.
	SigningKey = Strength{MinLen: 32, MinBits: 80, Make: "openssl rand -hex 32"}
)

// markers are words that mark a value someone was meant to replace, and
// weakWords words no random value has; both are compared with the value
// lower-cased and stripped of everything but letters and digits. Each is
// long enough that a random value contains it with negligible probability.
var (
	markers   = []string{"changeme", "changethis", "replaceme", "placeholder", "yoursecret", "yourtoken", "yourpassword", "notasecret"}
	weakWords = []string{"mysecret", "secretkey", "password", "passw0rd", "example", "insecure", "default", "dummy", "xxxxx"}
)

// Check returns nil when s is strong enough for st, or an error wrapping
// [ErrWeak] that says why, never quoting s.
func Check(s string, st Strength) error {
	if reason := weakness(s, st); reason != "" {
		return fmt.Errorf("%w: %s; make one with: %s", ErrWeak, reason, st.Make)
	}
	return nil
}

// Placeholder returns the placeholder marker s contains (such as
// "changeme" for "CHANGE-ME-…"), or "".
func Placeholder(s string) string { return contains(s, markers) }

// contains returns the first of words that s contains, ignoring case and
// everything but letters and digits, or "".
func contains(s string, words []string) string {
	var norm strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			norm.WriteRune(r)
		}
	}
	for _, w := range words {
		if strings.Contains(norm.String(), w) {
			return w
		}
	}
	return ""
}

// CheckURL refuses a URL whose password holds a placeholder marker, such
// as the CHANGE-ME password of an example file. It judges nothing else:
// local databases often have no password or a simple one.
func CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return nil // not a URL with a password; whoever opens it reports why
	}
	if pw, ok := u.User.Password(); ok {
		if p := Placeholder(pw); p != "" {
			return fmt.Errorf("%w: the password is a placeholder (it contains %q); set a real one", ErrWeak, p)
		}
	}
	return nil
}

func weakness(s string, st Strength) string {
	if p := Placeholder(s); p != "" {
		return fmt.Sprintf("it is a placeholder (it contains %q)", p)
	}
	if w := contains(s, weakWords); w != "" {
		return fmt.Sprintf("it contains the word %q", w)
	}
	if len(s) < st.MinLen {
		return fmt.Sprintf("it has %d bytes, want at least %d", len(s), st.MinLen)
	}
	if p := period(s); p < len(s) {
		return fmt.Sprintf("it repeats a sequence of %d characters", p)
	}
	if sequential(s) {
		return "it is mostly a run of consecutive characters (like 0123… or abcd…)"
	}
	if b := entropyBits(s); b < st.MinBits {
		return fmt.Sprintf("it has too little entropy (an estimated %.0f bits, want %.0f): too few different characters", b, st.MinBits)
	}
	return ""
}

// period returns the length of the shortest p such that s is a prefix of
// s[:p] repeated, when that repeats at least twice; else len(s).
func period(s string) int {
	for p := 1; p <= len(s)/2; p++ {
		if s[p:] == s[:len(s)-p] {
			return p
		}
	}
	return len(s)
}

// sequential reports whether at least half of s is made of runs of five or
// more consecutive characters, as in "0123456789abcdef" or "zyxw…".
func sequential(s string) bool {
	covered, run, step := 0, 1, 0
	flush := func() {
		if run >= 5 {
			covered += run
		}
	}
	for i := 1; i < len(s); i++ {
		d := int(s[i]) - int(s[i-1])
		if (d == 1 || d == -1) && (run == 1 || d == step) {
			run, step = run+1, d
			continue
		}
		flush()
		run, step = 1, 0
		if d == 1 || d == -1 {
			run, step = 2, d
		}
	}
	flush()
	return len(s) > 0 && 2*covered >= len(s)
}

// entropyBits estimates the entropy of s: its length times the Shannon
// entropy of its byte frequencies.
func entropyBits(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return n * h
}
