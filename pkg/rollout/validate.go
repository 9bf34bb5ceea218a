package rollout

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/parityhq/parity/pkg/envelope"
)

// Validate checks the plan and returns every problem found, each a
// [*FieldError] naming the field (joined with errors.Join; all wrap
// [ErrInvalidPlan]). The rules:
//
//   - Shape: an experiment name (1–64 bytes) is required, because it salts
//     the percentage hash; there is at least one step; every stage (and Base,
//     when set) is one of [envelope.Stages]; Hold is not negative.
//   - Audience: Percent is within 0–100; a step targets somebody (users,
//     rules or a percentage), since an empty step changes nothing; targeting
//     keys are non-empty and at most [envelope.MaxUserKeyLen] bytes; rules
//     name an attribute and at least one value.
//   - No overlap within a step: a user listed twice, or the same attribute
//     value listed twice (in one rule or in two rules on the same attribute),
//     is refused — it is almost always a copy-paste slip, and removing one
//     copy later would silently leave the other.
//   - No going back past the safety boundary: once a step (or Base) has put
//     anyone at rampdown or complete, no later step may give off, freeze,
//     dualwrite or shadow. In rampdown and complete the new store is
//     authoritative and the old one is written second or not at all, so the
//     old store may have missed writes; making it authoritative again would
//     lose them.
//   - No skipping dualwrite: a step with stage shadow or later is refused
//     unless, after the steps before it, everyone is at dualwrite or later
//     (a dualwrite step with percent 100, or a Base of dualwrite or later).
//     Writes made by users outside dualwrite never reach the new store, so
//     reading or comparing it before then would miss them, whichever user
//     reads.
//   - Monotonic percentages: a step's percentage must not be below the
//     previous step's percentage for the same stage (5 → 25 is fine, 25 → 5
//     is not). A step never takes users out of a stage — the 25% would keep
//     it — so a decrease would not do what it says; roll back with
//     [Transition] to an earlier [State] instead.
func (p Plan) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, errorf(field, format, args...)) }

	switch {
	case p.Experiment == "":
		add("experiment", "is empty; it salts the percentage hash, so every plan needs one")
	case len(p.Experiment) > envelope.MaxNameLen:
		add("experiment", "is %d bytes, longer than %d", len(p.Experiment), envelope.MaxNameLen)
	}
	if p.Base != "" && !p.Base.Valid() {
		add("base", "%q is not a stage (%s)", p.Base, stageList())
	}
	if len(p.Steps) == 0 {
		add("steps", "the plan is empty; give it at least one step")
	}

	base := p.base()
	// floor is the lowest stage anyone can have after the steps seen so far
	// (an order, -1 when unknown because a stage was invalid).
	floor, floorStep := order(base), -1
	// lastPast is the latest step (or -1 for base) that put anyone past the
	// safety boundary; -2 when none.
	lastPast := -2
	if pastBoundary(base) {
		lastPast = -1
	}
	type pct struct {
		step    int
		percent float64
	}
	lastPct := map[envelope.Stage]pct{}
	skipReported := false

	for i, st := range p.Steps {
		f := stepRef(i)
		validStage := st.Stage.Valid()
		if !validStage {
			add(f+".stage", "%q is not a stage (%s)", st.Stage, stageList())
		}
		if st.Hold < 0 {
			add(f+".hold", "%v is negative", st.Hold)
		}
		errs = append(errs, validateAudience(f+".audience", st.Audience)...)
		for j, name := range st.Reconcile {
			if name == "" || len(name) > 128 {
				add(fmt.Sprintf("%s.reconcile[%d]", f, j), "must name a sweep (1 to 128 bytes)")
			}
		}

		if !validStage {
			floor = -1
			continue
		}
		if oldAuthoritative(st.Stage) && lastPast != -2 {
			add(f+".stage", "%s after %s (%s) would lose writes: once anyone is at rampdown or complete the old store is no longer authoritative and may have missed writes, so no later step may return to off, freeze, dualwrite or shadow",
				st.Stage, stepRef(lastPast), stageOf(p, lastPast))
		}
		if readsNew(st.Stage) && floor >= 0 && floor < order(envelope.StageDualWrite) && !skipReported {
			skipReported = true // later steps would only repeat it
			add(f+".stage", "%s skips dualwrite: %s leaves users at %s, and their writes never reach the new store; add a dualwrite step with percent 100 before anyone reaches shadow or later",
				st.Stage, stepRef(floorStep), envelope.Stages[floor])
		}
		if st.Audience.Percent > 0 && st.Audience.Percent <= 100 {
			if prev, ok := lastPct[st.Stage]; ok && st.Audience.Percent < prev.percent {
				add(f+".audience.percent", "%s is below %s in %s, the previous %s step: percentages of a stage must not decrease, because a step never takes users out of a stage (those %s%% keep %s); roll back with Transition to an earlier state instead",
					fmtPercent(st.Audience.Percent), fmtPercent(prev.percent), stepRef(prev.step), st.Stage, fmtPercent(prev.percent), st.Stage)
			}
			lastPct[st.Stage] = pct{i, st.Audience.Percent}
		}

		if pastBoundary(st.Stage) {
			lastPast = i
		}
		switch o := order(st.Stage); {
		case st.Audience.Percent >= 100:
			floor, floorStep = o, i
		case floor >= 0 && o < floor:
			floor, floorStep = o, i
		}
	}
	return errors.Join(errs...)
}

func validateAudience(f string, a Audience) []error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, errorf(field, format, args...)) }

	if math.IsNaN(a.Percent) || a.Percent < 0 || a.Percent > 100 {
		add(f+".percent", "%s is outside 0–100", fmtPercent(a.Percent))
	}
	if len(a.Users) == 0 && len(a.Rules) == 0 && !(a.Percent > 0) {
		add(f, "targets nobody: give it users, rules or a percent above 0")
	}
	users := map[string]int{}
	for j, u := range a.Users {
		uf := f + ".users[" + strconv.Itoa(j) + "]"
		switch {
		case u == "":
			add(uf, "is empty")
		case len(u) > envelope.MaxUserKeyLen:
			add(uf, "is %d bytes, longer than %d", len(u), envelope.MaxUserKeyLen)
		}
		if k, ok := users[u]; ok {
			add(uf, "%q is listed twice (also users[%d])", u, k)
			continue
		}
		users[u] = j
	}
	type at struct{ rule, in int }
	values := map[[2]string]at{}
	for j, r := range a.Rules {
		rf := f + ".rules[" + strconv.Itoa(j) + "]"
		if r.Attribute == "" {
			add(rf+".attribute", "is empty")
		}
		if len(r.In) == 0 {
			add(rf+".in", "is empty: the rule would match nobody")
		}
		for k, v := range r.In {
			key := [2]string{r.Attribute, v}
			if prev, ok := values[key]; ok {
				add(rf+".in["+strconv.Itoa(k)+"]", "%s %q is listed twice (also rules[%d].in[%d]): rules overlap", r.Attribute, v, prev.rule, prev.in)
				continue
			}
			values[key] = at{j, k}
		}
	}
	return errs
}

func stageOf(p Plan, i int) envelope.Stage {
	if i < 0 {
		return p.base()
	}
	return p.Steps[i].Stage
}

func stageList() string {
	s := make([]string, len(envelope.Stages))
	for i, v := range envelope.Stages {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
