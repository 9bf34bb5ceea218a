package diff

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Rules say what counts as the same. The zero value is exact structural
// comparison: every member and element must be present on both sides with the
// same JSON type and value (numbers compared as exact decimals, strings after
// decoding escapes, object members in any order, arrays in order).
//
// Rules are plain data with JSON tags, so they can be stored and edited as
// JSON; docs/diff-rules.md describes the format. [Compile] validates them.
type Rules struct {
	// Version identifies this set of rules; it is copied to
	// [Result.RulesVersion].
	Version int64 `json:"version,omitempty"`
	// MaxDiffs is how many differences a [Result] lists. Defaults to 32;
	// at most 10,000.
	MaxDiffs int `json:"max_diffs,omitempty"`
	// MaxValueBytes is how much of each differing value a [Difference]
	// quotes. Defaults to 256 bytes; at most 65,536.
	MaxValueBytes int `json:"max_value_bytes,omitempty"`
	// MaxDepth is the deepest nesting of arrays and objects accepted; a
	// deeper value is judged [VerdictInvalidJSON]. Defaults to 1,000; at most
	// 10,000.
	MaxDepth int `json:"max_depth,omitempty"`
	// Default applies to every operation.
	Default OperationRules `json:"default"`
	// Operations add rules for one operation, keyed by its name. They are
	// consulted before Default, so on a conflict the operation's rule wins.
	Operations map[string]OperationRules `json:"operations,omitempty"`
}

// OperationRules is one section of [Rules]. Each list is consulted in order;
// where two rules of the same list match a place, the earlier one applies.
// Paths are patterns (see docs/diff-rules.md): "items[*].price",
// "*.etag", "**.updated_at", "meta.**", "**" for everywhere.
type OperationRules struct {
	// Replace, in an operation's section, drops the Default section for that
	// operation instead of adding to it.
	Replace bool `json:"replace,omitempty"`
	// Ignore lists places whose differences do not count.
	Ignore []string `json:"ignore,omitempty"`
	// Numbers make numbers equal within a tolerance.
	Numbers []NumberRule `json:"numbers,omitempty"`
	// Arrays compare arrays as unordered multisets or match their elements
	// by a key field.
	Arrays []ArrayRule `json:"arrays,omitempty"`
	// Timestamps compare times across formats and within a tolerance.
	Timestamps []TimestampRule `json:"timestamps,omitempty"`
	// Strings normalise strings before comparing them.
	Strings []StringRule `json:"strings,omitempty"`
	// NumericStrings lists places where a number equals a string holding
	// the same number ("42" and 42).
	NumericStrings []string `json:"numeric_strings,omitempty"`
	// NullEqualsMissing lists places where a member that is null on one side
	// and absent on the other is not a difference.
	NullEqualsMissing []string `json:"null_equals_missing,omitempty"`
	// EmptyEqualsMissing lists places where a member that is "", [] or {}
	// (or null) on one side and absent on the other is not a difference.
	EmptyEqualsMissing []string `json:"empty_equals_missing,omitempty"`
	// Errors map error texts to classes; both sides failing with errors of
	// one class is [VerdictBothErrorSame]. An error that no rule matches is
	// its own class: its text with surrounding space trimmed.
	Errors []ErrorClass `json:"errors,omitempty"`
}

// NumberRule makes numbers at Path equal when |a−b| ≤ max(Absolute,
// Relative × min(|a|, |b|)) (the definition of cmpopts.EquateApprox).
type NumberRule struct {
	Path     string  `json:"path"`
	Absolute float64 `json:"absolute,omitempty"`
	Relative float64 `json:"relative,omitempty"`
}

// ArrayRule says how to match the elements of the arrays at Path: as an
// unordered multiset, or by the value of the member Key of each element.
// Exactly one of Unordered and Key must be set.
type ArrayRule struct {
	Path      string `json:"path"`
	Unordered bool   `json:"unordered,omitempty"`
	Key       string `json:"key,omitempty"`
}

// TimestampRule makes the values at Path equal when both read as times that
// are at most Tolerance apart. Times are RFC 3339 strings (with or without a
// fraction) or Unix epoch numbers or numeric strings; Unit says whether
// epochs count seconds ("s"), milliseconds ("ms"), or, when empty ("auto"),
// milliseconds if their magnitude is at least 1e11 and seconds otherwise.
// A value that does not read as a time is compared as usual.
type TimestampRule struct {
	Path      string   `json:"path"`
	Tolerance Duration `json:"tolerance,omitempty"`
	Unit      string   `json:"unit,omitempty"`
}

// StringRule normalises the strings at Path before comparing them: Trim
// removes surrounding Unicode white space, Fold compares under Unicode case
// folding.
type StringRule struct {
	Path string `json:"path"`
	Trim bool   `json:"trim,omitempty"`
	Fold bool   `json:"fold,omitempty"`
}

// ErrorClass maps error texts to Class: a text containing Contains, or
// matching the regular expression Regexp (RE2 syntax). Exactly one of the two
// must be set.
type ErrorClass struct {
	Class    string `json:"class"`
	Contains string `json:"contains,omitempty"`
	Regexp   string `json:"regexp,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as a string such as
// "1s" or "250ms".
type Duration time.Duration

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string such as "1.5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("diff: duration must be a string such as \"1s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("diff: duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Defaults and limits of [Rules].
const (
	DefaultMaxDiffs      = 32
	DefaultMaxValueBytes = 256
	DefaultMaxDepth      = 1000
	maxMaxDiffs          = 10000
	maxMaxValueBytes     = 65536
	maxMaxDepth          = 10000
)

// The compiled form.

type numRule struct {
	prio     int
	abs, rel float64
}

type arrRule struct {
	prio      int
	unordered bool
	key       string
}

type timeRule struct {
	prio int
	tol  time.Duration
	unit int // 0 auto, 1 seconds, 2 milliseconds
}

type strRule struct {
	prio       int
	trim, fold bool
}

// actions are the rules that apply at one place.
type actions struct {
	ignore       bool
	numStr       bool
	nullMissing  bool
	emptyMissing bool
	num          *numRule
	arr          *arrRule
	ts           *timeRule
	str          *strRule
}

// merge adds src to a, keeping a's rule of each kind unless src's comes
// earlier.
func (a *actions) merge(src *actions) {
	a.ignore = a.ignore || src.ignore
	a.numStr = a.numStr || src.numStr
	a.nullMissing = a.nullMissing || src.nullMissing
	a.emptyMissing = a.emptyMissing || src.emptyMissing
	if src.num != nil && (a.num == nil || src.num.prio < a.num.prio) {
		a.num = src.num
	}
	if src.arr != nil && (a.arr == nil || src.arr.prio < a.arr.prio) {
		a.arr = src.arr
	}
	if src.ts != nil && (a.ts == nil || src.ts.prio < a.ts.prio) {
		a.ts = src.ts
	}
	if src.str != nil && (a.str == nil || src.str.prio < a.str.prio) {
		a.str = src.str
	}
}

type errClass struct {
	class    string
	contains string
	re       *regexp.Regexp
}

// program is the compiled rules of one operation.
type program struct {
	trie   *trie // nil when no path rules
	errors []errClass
	// root is the state set at the document root (the closure of trie node
	// 0), and rootAct the actions there.
	root    []int32
	rootAct *actions
}

// section pairs a section with the name used in errors.
type section struct {
	name string
	r    *OperationRules
}

func compileProgram(secs []section) (*program, error) {
	t := newTrie()
	prio := 0
	var errs []errClass
	addPath := func(where, path string, set func(a *actions)) error {
		segs, err := parsePattern(path)
		if err != nil {
			return fmt.Errorf("diff: rule %s: %w", where, err)
		}
		n := t.insert(segs)
		if t.nodes[n].act == nil {
			t.nodes[n].act = new(actions)
		}
		var a actions
		set(&a)
		t.nodes[n].act.merge(&a)
		prio++
		return nil
	}
	for _, s := range secs {
		r := s.r
		for i, p := range r.Ignore {
			if err := addPath(fmt.Sprintf("%s.ignore[%d]", s.name, i), p, func(a *actions) { a.ignore = true }); err != nil {
				return nil, err
			}
		}
		for i, n := range r.Numbers {
			where := fmt.Sprintf("%s.numbers[%d]", s.name, i)
			if n.Absolute < 0 || n.Relative < 0 || math.IsNaN(n.Absolute) || math.IsNaN(n.Relative) || math.IsInf(n.Absolute, 0) || math.IsInf(n.Relative, 0) {
				return nil, fmt.Errorf("diff: rule %s: absolute and relative must be finite and not negative", where)
			}
			nr := &numRule{prio: prio, abs: n.Absolute, rel: n.Relative}
			if err := addPath(where, n.Path, func(a *actions) { a.num = nr }); err != nil {
				return nil, err
			}
		}
		for i, ar := range r.Arrays {
			where := fmt.Sprintf("%s.arrays[%d]", s.name, i)
			if ar.Unordered == (ar.Key != "") {
				return nil, fmt.Errorf("diff: rule %s: set exactly one of unordered and key", where)
			}
			rr := &arrRule{prio: prio, unordered: ar.Unordered, key: ar.Key}
			if err := addPath(where, ar.Path, func(a *actions) { a.arr = rr }); err != nil {
				return nil, err
			}
		}
		for i, tr := range r.Timestamps {
			where := fmt.Sprintf("%s.timestamps[%d]", s.name, i)
			if tr.Tolerance < 0 {
				return nil, fmt.Errorf("diff: rule %s: negative tolerance", where)
			}
			unit := 0
			switch tr.Unit {
			case "", "auto":
			case "s":
				unit = 1
			case "ms":
				unit = 2
			default:
				return nil, fmt.Errorf("diff: rule %s: unit %q: want \"s\", \"ms\" or \"auto\"", where, tr.Unit)
			}
			rr := &timeRule{prio: prio, tol: time.Duration(tr.Tolerance), unit: unit}
			if err := addPath(where, tr.Path, func(a *actions) { a.ts = rr }); err != nil {
				return nil, err
			}
		}
		for i, sr := range r.Strings {
			where := fmt.Sprintf("%s.strings[%d]", s.name, i)
			if !sr.Trim && !sr.Fold {
				return nil, fmt.Errorf("diff: rule %s: set trim, fold or both", where)
			}
			rr := &strRule{prio: prio, trim: sr.Trim, fold: sr.Fold}
			if err := addPath(where, sr.Path, func(a *actions) { a.str = rr }); err != nil {
				return nil, err
			}
		}
		for i, p := range r.NumericStrings {
			if err := addPath(fmt.Sprintf("%s.numeric_strings[%d]", s.name, i), p, func(a *actions) { a.numStr = true }); err != nil {
				return nil, err
			}
		}
		for i, p := range r.NullEqualsMissing {
			if err := addPath(fmt.Sprintf("%s.null_equals_missing[%d]", s.name, i), p, func(a *actions) { a.nullMissing = true }); err != nil {
				return nil, err
			}
		}
		for i, p := range r.EmptyEqualsMissing {
			if err := addPath(fmt.Sprintf("%s.empty_equals_missing[%d]", s.name, i), p, func(a *actions) { a.emptyMissing = true }); err != nil {
				return nil, err
			}
		}
		for i, e := range r.Errors {
			where := fmt.Sprintf("%s.errors[%d]", s.name, i)
			if strings.TrimSpace(e.Class) == "" {
				return nil, fmt.Errorf("diff: rule %s: empty class", where)
			}
			if (e.Contains == "") == (e.Regexp == "") {
				return nil, fmt.Errorf("diff: rule %s: set exactly one of contains and regexp", where)
			}
			ec := errClass{class: e.Class, contains: e.Contains}
			if e.Regexp != "" {
				re, err := regexp.Compile(e.Regexp)
				if err != nil {
					return nil, fmt.Errorf("diff: rule %s: %w", where, err)
				}
				ec.re = re
			}
			errs = append(errs, ec)
		}
	}
	p := &program{errors: errs}
	if len(t.nodes) > 1 || t.nodes[0].act != nil {
		p.trie = t
		p.root = t.closure(nil, 0)
		p.rootAct = t.merged(p.root, new(actions))
	}
	return p, nil
}

// closure appends n and every "**" node reachable from it without consuming
// a segment to set, unless already there.
func (t *trie) closure(set []int32, n int32) []int32 {
	for n >= 0 {
		for _, s := range set {
			if s == n {
				return set
			}
		}
		set = append(set, n)
		n = t.nodes[n].glob
	}
	return set
}

// merged returns the actions of the state set: the single terminal's actions
// when there is one, else their merge into slot; nil when none apply.
func (t *trie) merged(set []int32, slot *actions) *actions {
	var one *actions
	many := false
	for _, s := range set {
		a := t.nodes[s].act
		if a == nil {
			continue
		}
		if one == nil {
			one = a
			continue
		}
		if !many {
			*slot = *one
			many = true
		}
		slot.merge(a)
	}
	if many {
		return slot
	}
	return one
}

// A Differ judges pairs under compiled [Rules]. It is immutable and safe for
// concurrent use.
type Differ struct {
	version       int64
	maxDiffs      int
	maxValueBytes int
	maxDepth      int
	def           *program
	ops           map[string]*program
}

// Compile validates r and returns a [Differ] for it. An error names the
// offending rule, e.g. `diff: rule default.ignore[2]: pattern "a..b" ...`.
func Compile(r Rules) (*Differ, error) {
	d := &Differ{
		version:       r.Version,
		maxDiffs:      r.MaxDiffs,
		maxValueBytes: r.MaxValueBytes,
		maxDepth:      r.MaxDepth,
	}
	switch {
	case r.MaxDiffs < 0 || r.MaxDiffs > maxMaxDiffs:
		return nil, fmt.Errorf("diff: rule max_diffs: %d is not in 0..%d", r.MaxDiffs, maxMaxDiffs)
	case r.MaxValueBytes < 0 || r.MaxValueBytes > maxMaxValueBytes:
		return nil, fmt.Errorf("diff: rule max_value_bytes: %d is not in 0..%d", r.MaxValueBytes, maxMaxValueBytes)
	case r.MaxDepth < 0 || r.MaxDepth > maxMaxDepth:
		return nil, fmt.Errorf("diff: rule max_depth: %d is not in 0..%d", r.MaxDepth, maxMaxDepth)
	}
	if d.maxDiffs == 0 {
		d.maxDiffs = DefaultMaxDiffs
	}
	if d.maxValueBytes == 0 {
		d.maxValueBytes = DefaultMaxValueBytes
	}
	if d.maxDepth == 0 {
		d.maxDepth = DefaultMaxDepth
	}
	if r.Default.Replace {
		return nil, errors.New("diff: rule default.replace: only an operation's section can replace the default")
	}
	var err error
	if d.def, err = compileProgram([]section{{"default", &r.Default}}); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(r.Operations))
	for name := range r.Operations {
		names = append(names, name)
	}
	sort.Strings(names) // report the first bad operation deterministically
	for _, name := range names {
		op := r.Operations[name]
		where := fmt.Sprintf("operations[%q]", name)
		if !validOpName(name) {
			return nil, fmt.Errorf("diff: rule %s: operation names are 1 to 64 characters of A-Z a-z 0-9 _ - and : (as in reconcile:orders)", where)
		}
		secs := []section{{where, &op}}
		if !op.Replace {
			secs = append(secs, section{"default", &r.Default})
		}
		p, err := compileProgram(secs)
		if err != nil {
			return nil, err
		}
		if d.ops == nil {
			d.ops = make(map[string]*program, len(r.Operations))
		}
		d.ops[name] = p
	}
	return d, nil
}

func validOpName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareByte(s[i]) && s[i] != ':' { // ':' for the reconciliation of a table, "reconcile:orders"
			return false
		}
	}
	return true
}

var exact = func() *Differ {
	d, err := Compile(Rules{})
	if err != nil {
		panic(err)
	}
	return d
}()

// Exact returns the [Differ] for the zero [Rules]: exact structural
// comparison. It is shared and safe for concurrent use.
func Exact() *Differ { return exact }

// program returns the compiled rules for an operation.
func (d *Differ) program(op string) *program {
	if p, ok := d.ops[op]; ok {
		return p
	}
	return d.def
}
