package report

// Counters are the counters a judged pair adds to, for one segment, minute,
// operation or any union of them. It is the one home of that set: the
// verifier counts into it, the store adds it to its rows, the gate and the
// rollout controller read it, and adding a counter here is the only change
// the set needs (the store maps each one to a column, and the compiler
// refuses a store that forgot one: see [NumCounters]).
//
// Its JSON form names every counter ("pairs", "divergent", …), so stored
// documents read the same whatever order the fields are declared in. It has
// no JSON methods of its own, so a struct that embeds it encodes and decodes
// as usual. The zero Counters is empty and ready to use.
type Counters struct {
	Pairs           int64 `json:"pairs"`              // pairs judged (A/A pairs excluded)
	Divergent       int64 `json:"divergent"`          // of Pairs, candidate disagreed with control
	ControlErrors   int64 `json:"control_errors"`     // of Pairs, control failed (error, panic or timeout)
	CandidateErrors int64 `json:"candidate_errors"`   // of Pairs, candidate failed (error, panic or timeout)
	Skipped         int64 `json:"skipped_writes"`     // of Pairs, non-authoritative write skipped
	Timeouts        int64 `json:"candidate_timeouts"` // of Pairs, candidate timed out
	// AAPairs and AADivergent count A/A pairs (the candidate is a second
	// read of control): they measure noise and are in neither Pairs nor
	// Divergent. Left out of the JSON form when zero.
	AAPairs     int64 `json:"aa_pairs,omitzero"`
	AADivergent int64 `json:"aa_divergent,omitzero"`
}

// NumCounters is how many counters a [Counters] holds: the length of
// [Counters.Fields] and [CounterNames]. Code that maps each counter to
// something (a column, a metric) declares an array of this length, so that
// adding a counter fails to compile until the mapping has it too.
const NumCounters = 8

// CounterNames are the counters' names in [Counters.Fields] order, as the
// JSON form spells them.
var CounterNames = [NumCounters]string{
	"pairs", "divergent", "control_errors", "candidate_errors", "skipped_writes", "candidate_timeouts",
	"aa_pairs", "aa_divergent",
}

// Fields returns pointers to c's counters in a fixed order, the order of
// [CounterNames]: for code that handles every counter alike (sums, columns,
// scanning a row).
func (c *Counters) Fields() [NumCounters]*int64 {
	return [NumCounters]*int64{&c.Pairs, &c.Divergent, &c.ControlErrors, &c.CandidateErrors, &c.Skipped,
		&c.Timeouts, &c.AAPairs, &c.AADivergent}
}

// Values returns c's counters in [Counters.Fields] order.
func (c Counters) Values() [NumCounters]int64 {
	var v [NumCounters]int64
	for i, p := range c.Fields() {
		v[i] = *p
	}
	return v
}

// Add adds o to c, counter by counter. Adding is exact, commutative and
// associative, so counters merge across verifiers, minutes and segments in
// any order.
func (c *Counters) Add(o Counters) {
	f, g := c.Fields(), o.Fields()
	for i := range f {
		*f[i] += *g[i]
	}
}

// Sub subtracts o from c, counter by counter: what was counted since o was
// taken, when o is an earlier reading of the same counters.
func (c *Counters) Sub(o Counters) {
	f, g := c.Fields(), o.Fields()
	for i := range f {
		*f[i] -= *g[i]
	}
}

// Merge returns the sum of cs (the zero Counters when there are none).
func Merge(cs ...Counters) Counters {
	var t Counters
	for _, c := range cs {
		t.Add(c)
	}
	return t
}

// IsZero reports whether every counter is zero.
func (c Counters) IsZero() bool { return c == Counters{} }

// PairOutcome is what one judged pair did, as its counters see it. The
// verifier fills it from the pair's verdict and both sides' outcomes;
// [Counters.Count] is the one place that turns it into counts.
type PairOutcome struct {
	// AA marks an A/A pair (the candidate a second read of control): it is
	// counted in AAPairs and AADivergent only.
	AA bool
	// Divergent: the verdict counts against the candidate (see the verdict
	// table in docs/api.md). A failure of the control alone is not.
	Divergent bool
	// ControlFailed and CandidateFailed: the side returned an error,
	// panicked or timed out.
	ControlFailed, CandidateFailed bool
	// Skipped: a side's non-authoritative write was not attempted.
	Skipped bool
	// CandidateTimeout: the candidate timed out (also CandidateFailed).
	CandidateTimeout bool
}

// Count adds one pair to c.
func (c *Counters) Count(o PairOutcome) {
	if o.AA {
		c.AAPairs++
		if o.Divergent {
			c.AADivergent++
		}
		return
	}
	c.Pairs++
	for _, x := range [...]struct {
		on bool
		n  *int64
	}{
		{o.Divergent, &c.Divergent}, {o.ControlFailed, &c.ControlErrors}, {o.CandidateFailed, &c.CandidateErrors},
		{o.Skipped, &c.Skipped}, {o.CandidateTimeout, &c.Timeouts},
	} {
		if x.on {
			*x.n++
		}
	}
}
