package rollout

import (
	"errors"
	"fmt"

	"github.com/parityhq/parity/pkg/envelope"
)

// ErrInvalidState is returned by [Transition] for a state outside
// 0..len(Plan.Steps).
var ErrInvalidState = errors.New("rollout: invalid state")

// Transition reports whether the rollout may move from one state to another,
// forward (applying steps) or back (a rollback). It validates plan first.
// It then considers the users whose stage can change — those targeted by the
// steps between the two states — and the stages they can have before and
// after, and refuses with an error wrapping [ErrUnsafeTransition] when:
//
//   - someone could leave rampdown or complete for off, freeze, dualwrite or
//     shadow: the old store has missed writes since it stopped being
//     authoritative, so making it authoritative again would lose them; or
//   - someone could reach shadow or later while, in the starting state,
//     someone is still below dualwrite: their writes never reached the new
//     store. This refuses a jump over the dualwrite step (0 → 2 when step 0
//     is "dualwrite 100%"): apply it, let it run, then move on.
//
// A step at percent 100 covers everyone, so stages given before it are not
// counted: rolling back from "complete 100%" to "live 100%" is allowed even
// if the plan began at off. Otherwise the analysis is conservative: a state
// change that could move some user across the boundary is refused even if the
// audiences happen not to overlap.
//
// Lowering a percentage by moving back is what a rollback is, so the
// monotonic-percentage rule of [Plan.Validate] does not apply here.
func Transition(plan Plan, from, to State) error {
	if err := plan.Validate(); err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		st   State
	}{{"from", from}, {"to", to}} {
		if s.st.Step < 0 || s.st.Step > len(plan.Steps) {
			return fmt.Errorf("%w: %s.step %d is outside 0..%d", ErrInvalidState, s.name, s.st.Step, len(plan.Steps))
		}
	}
	return check(plan, from.Step, to.Step)
}

// stageAt is a stage some users can have, and the step (-1: base) giving it.
type stageAt struct {
	stage envelope.Stage
	step  int
}

// stagesAt lists the stages users can have after n steps.
func stagesAt(p Plan, n int) []stageAt {
	out := stagesOf(p, 0, n)
	if len(out) == 0 || p.Steps[out[0].step].Audience.Percent < 100 {
		out = append([]stageAt{{p.base(), -1}}, out...)
	}
	return out
}

// stagesOf lists the stages steps[lo:hi] give, from the last step at percent
// 100 in that range onward (earlier ones are overridden for everyone).
func stagesOf(p Plan, lo, hi int) []stageAt {
	start := lo
	for i := hi - 1; i >= lo; i-- {
		if p.Steps[i].Audience.Percent >= 100 {
			start = i
			break
		}
	}
	var out []stageAt
	for i := start; i < hi; i++ {
		out = append(out, stageAt{p.Steps[i].Stage, i})
	}
	return out
}

func check(p Plan, a, b int) error {
	if a == b {
		return nil
	}
	var before, after []stageAt
	if a < b {
		before, after = stagesAt(p, a), stagesOf(p, a, b)
	} else {
		before, after = stagesOf(p, b, a), stagesAt(p, b)
	}
	for _, f := range before {
		if !pastBoundary(f.stage) {
			continue
		}
		for _, t := range after {
			if oldAuthoritative(t.stage) {
				return fmt.Errorf("%w: step %d → %d: users at %s (%s) would return to %s (%s); the old store has missed writes since it stopped being authoritative, so it cannot be authoritative again",
					ErrUnsafeTransition, a, b, f.stage, stepRef(f.step), t.stage, stepRef(t.step))
			}
		}
	}
	low := stageAt{step: -2}
	for _, s := range stagesAt(p, a) {
		if low.step == -2 || order(s.stage) < order(low.stage) {
			low = s
		}
	}
	if order(low.stage) < order(envelope.StageDualWrite) {
		for _, t := range after {
			if readsNew(t.stage) {
				return fmt.Errorf("%w: step %d → %d: users would reach %s (%s) while users at %s (%s) have not been dual-writing, so the new store lacks their writes; apply a dualwrite step for everyone first and let it run",
					ErrUnsafeTransition, a, b, t.stage, stepRef(t.step), low.stage, stepRef(low.step))
			}
		}
	}
	return nil
}

// Kill returns the safest state to move to from state in an emergency; it
// never returns a state [Transition] would refuse from state, and never one
// past state.
//
//   - While nobody can be at rampdown or complete, the old store still has
//     every write and is the authoritative path, so Kill returns State{0}:
//     everyone back at the base stage (off by default).
//   - Once someone can be at rampdown or complete, the old store may have
//     missed writes and cannot be made authoritative again; the new store is
//     authoritative whatever Kill does. Kill then returns the latest state,
//     at or before state, in which nobody is at complete, so the old store is
//     written again (rampdown at most) and stays a usable copy for a manual
//     recovery. From a state with rampdown but no complete that is state
//     itself: there is nothing safer to go back to.
//   - If no such state exists, Kill returns state.
//
// A state outside 0..len(plan.Steps) is clamped into it first. Kill does not
// validate plan.
func Kill(plan Plan, state State) State {
	n := clampStep(plan, state.Step)
	if check(plan, n, 0) == nil && !hasStage(stagesAt(plan, 0), envelope.StageComplete) {
		past := false
		for _, s := range stagesAt(plan, n) {
			past = past || pastBoundary(s.stage)
		}
		if !past {
			return State{}
		}
	}
	for k := n; k >= 0; k-- {
		if !hasStage(stagesAt(plan, k), envelope.StageComplete) && check(plan, n, k) == nil {
			return State{Step: k}
		}
	}
	return State{Step: n}
}

func hasStage(set []stageAt, s envelope.Stage) bool {
	for _, v := range set {
		if v.stage == s {
			return true
		}
	}
	return false
}
