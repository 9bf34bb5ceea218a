package rollout_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/rollout"
)

const (
	off       = envelope.StageOff
	freeze    = envelope.StageFreeze
	dualwrite = envelope.StageDualWrite
	shadow    = envelope.StageShadow
	live      = envelope.StageLive
	rampdown  = envelope.StageRampDown
	complete  = envelope.StageComplete
)

func pct(s envelope.Stage, p float64) rollout.Step {
	return rollout.Step{Stage: s, Audience: rollout.Audience{Percent: p}}
}

// story is the typical rollout of DESIGN.md: everyone dual-writes, everyone
// shadows, then the testing group, chosen countries or the Pro plan, 5%, 25%
// and everyone read from the new store; then the old path is retired.
func story() rollout.Plan {
	return rollout.Plan{
		Experiment: "orders",
		Steps: []rollout.Step{
			0: {Name: "dual-write", Stage: dualwrite, Audience: rollout.Audience{Percent: 100}, Hold: time.Hour},
			1: {Name: "shadow", Stage: shadow, Audience: rollout.Audience{Percent: 100}, Gate: "consistency"},
			2: {Name: "testing group", Stage: live, Audience: rollout.Audience{Users: []string{"123", "456"}}},
			3: {Name: "countries, pro", Stage: live, Audience: rollout.Audience{Rules: []rollout.Rule{
				{Attribute: "country", In: []string{"IN", "US"}},
				{Attribute: "plan", In: []string{"pro"}},
			}}},
			4: pct(live, 5),
			5: pct(live, 25),
			6: pct(live, 100),
			7: pct(rampdown, 100),
			8: pct(complete, 100),
		},
	}
}

// keyIn returns a targeting key whose bucket is in [lo, hi).
func keyIn(t *testing.T, experiment string, lo, hi uint64) string {
	t.Helper()
	for i := range 1_000_000 {
		k := fmt.Sprintf("k%d", i)
		if b := rollout.Bucket(experiment, k); b >= lo && b < hi {
			return k
		}
	}
	t.Fatalf("no key with bucket in [%d, %d)", lo, hi)
	return ""
}

func TestStoryIsValid(t *testing.T) {
	if err := story().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	with := func(edit func(p *rollout.Plan)) rollout.Plan {
		p := story()
		edit(&p)
		return p
	}
	for _, tc := range []struct {
		name        string
		plan        rollout.Plan
		want        string // the whole error message
		explanation string
	}{
		{
			name: "no experiment", plan: with(func(p *rollout.Plan) { p.Experiment = "" }),
			want:        "rollout: experiment: is empty; it salts the percentage hash, so every plan needs one",
			explanation: "the experiment salts the hash; without it two migrations would split users identically",
		},
		{
			name: "empty plan", plan: rollout.Plan{Experiment: "orders"},
			want:        "rollout: steps: the plan is empty; give it at least one step",
			explanation: "a plan with no steps cannot roll anything out",
		},
		{
			name: "unknown stage", plan: with(func(p *rollout.Plan) { p.Steps[2].Stage = "canary" }),
			want:        `rollout: steps[2].stage: "canary" is not a stage (off, freeze, dualwrite, shadow, live, rampdown, complete)`,
			explanation: "only envelope.Stages are stages; the hooks would not know what to do with another",
		},
		{
			name: "unknown base", plan: with(func(p *rollout.Plan) { p.Base = "Off" }),
			want:        `rollout: base: "Off" is not a stage (off, freeze, dualwrite, shadow, live, rampdown, complete)`,
			explanation: "stages are case-sensitive",
		},
		{
			name: "percent above 100", plan: with(func(p *rollout.Plan) { p.Steps[5].Audience.Percent = 140 }),
			want:        "rollout: steps[5].audience.percent: 140 is outside 0–100",
			explanation: "a percentage of everyone is at most 100",
		},
		{
			name: "negative percent", plan: with(func(p *rollout.Plan) { p.Steps[2].Audience.Percent = -1 }),
			want:        "rollout: steps[2].audience.percent: -1 is outside 0–100",
			explanation: "a percentage of everyone is at least 0",
		},
		{
			name: "NaN percent", plan: with(func(p *rollout.Plan) { p.Steps[2].Audience.Percent = math.NaN() }),
			want:        "rollout: steps[2].audience.percent: NaN is outside 0–100",
			explanation: "NaN compares false with everything and would silently target nobody",
		},
		{
			name: "empty audience", plan: with(func(p *rollout.Plan) { p.Steps[2].Audience = rollout.Audience{} }),
			want:        "rollout: steps[2].audience: targets nobody: give it users, rules or a percent above 0",
			explanation: "a step that targets nobody changes nothing, which is never what its author meant",
		},
		{
			name: "negative hold", plan: with(func(p *rollout.Plan) { p.Steps[0].Hold = -time.Second }),
			want:        "rollout: steps[0].hold: -1s is negative",
			explanation: "a hold is a minimum duration",
		},
		{
			name: "user listed twice", plan: with(func(p *rollout.Plan) { p.Steps[2].Audience.Users = []string{"123", "456", "123"} }),
			want:        `rollout: steps[2].audience.users[2]: "123" is listed twice (also users[0])`,
			explanation: "a duplicate is a slip, and removing one copy later would silently keep the user targeted",
		},
		{
			name: "empty user", plan: with(func(p *rollout.Plan) { p.Steps[2].Audience.Users = []string{"123", ""} }),
			want:        "rollout: steps[2].audience.users[1]: is empty",
			explanation: "an empty targeting key is an anonymous caller, not a user",
		},
		{
			name: "value listed twice in one rule", plan: with(func(p *rollout.Plan) { p.Steps[3].Audience.Rules[0].In = []string{"IN", "US", "IN"} }),
			want:        `rollout: steps[3].audience.rules[0].in[2]: country "IN" is listed twice (also rules[0].in[0]): rules overlap`,
			explanation: "the same attribute value twice in one rule",
		},
		{
			name: "value listed in two rules", plan: with(func(p *rollout.Plan) {
				p.Steps[3].Audience.Rules = append(p.Steps[3].Audience.Rules, rollout.Rule{Attribute: "country", In: []string{"BR", "US"}})
			}),
			want:        `rollout: steps[3].audience.rules[2].in[1]: country "US" is listed twice (also rules[0].in[1]): rules overlap`,
			explanation: "two rules on the same attribute must not share a value; distinct values are fine (BR is accepted)",
		},
		{
			name: "rule without attribute or values", plan: with(func(p *rollout.Plan) { p.Steps[3].Audience.Rules[1] = rollout.Rule{} }),
			want:        "rollout: steps[3].audience.rules[1].attribute: is empty\nrollout: steps[3].audience.rules[1].in: is empty: the rule would match nobody",
			explanation: "a rule names an attribute and at least one value; every problem is reported, joined",
		},
		{
			name: "back from rampdown to shadow", plan: with(func(p *rollout.Plan) { p.Steps = append(p.Steps[:8:8], pct(shadow, 100)) }),
			want:        "rollout: steps[8].stage: shadow after steps[7] (rampdown) would lose writes: once anyone is at rampdown or complete the old store is no longer authoritative and may have missed writes, so no later step may return to off, freeze, dualwrite or shadow",
			explanation: "in rampdown the old store is written second and its failures are not retried; making it authoritative again loses those writes",
		},
		{
			name: "back from complete to off for a few users", plan: with(func(p *rollout.Plan) {
				p.Steps = append(p.Steps, rollout.Step{Stage: off, Audience: rollout.Audience{Users: []string{"789"}}})
			}),
			want:        "rollout: steps[9].stage: off after steps[8] (complete) would lose writes: once anyone is at rampdown or complete the old store is no longer authoritative and may have missed writes, so no later step may return to off, freeze, dualwrite or shadow",
			explanation: "in complete the old store is not written at all; the boundary applies to any audience",
		},
		{
			name: "base past the boundary", plan: rollout.Plan{Experiment: "orders", Base: rampdown, Steps: []rollout.Step{pct(dualwrite, 100)}},
			want:        "rollout: steps[0].stage: dualwrite after base (rampdown) would lose writes: once anyone is at rampdown or complete the old store is no longer authoritative and may have missed writes, so no later step may return to off, freeze, dualwrite or shadow",
			explanation: "the base stage counts as the state before the first step",
		},
		{
			name: "skipping dualwrite", plan: with(func(p *rollout.Plan) { p.Steps = p.Steps[1:] }),
			want:        "rollout: steps[0].stage: shadow skips dualwrite: base leaves users at off, and their writes never reach the new store; add a dualwrite step with percent 100 before anyone reaches shadow or later",
			explanation: "shadow compares the new store; without dual writes it lacks every write since the copy",
		},
		{
			name: "dualwrite for only some users", plan: with(func(p *rollout.Plan) { p.Steps[0].Audience.Percent = 50 }),
			want:        "rollout: steps[1].stage: shadow skips dualwrite: base leaves users at off, and their writes never reach the new store; add a dualwrite step with percent 100 before anyone reaches shadow or later",
			explanation: "the other half's writes never reach the new store, and any user can read data the other half wrote",
		},
		{
			name: "freeze is not dualwrite", plan: rollout.Plan{Experiment: "orders", Steps: []rollout.Step{pct(freeze, 100), pct(live, 5)}},
			want:        "rollout: steps[1].stage: live skips dualwrite: steps[0] leaves users at freeze, and their writes never reach the new store; add a dualwrite step with percent 100 before anyone reaches shadow or later",
			explanation: "a freeze allows a bulk copy, but writes after it must still be dual-written",
		},
		{
			name: "dualwrite undone for some users", plan: with(func(p *rollout.Plan) {
				p.Steps = append(p.Steps[:2:2], append([]rollout.Step{{Stage: off, Audience: rollout.Audience{Users: []string{"789"}}}}, p.Steps[2:]...)...)
			}),
			want:        "rollout: steps[3].stage: live skips dualwrite: steps[2] leaves users at off, and their writes never reach the new store; add a dualwrite step with percent 100 before anyone reaches shadow or later",
			explanation: "user 789 stopped dual-writing, so later readers of the new store would miss its writes",
		},
		{
			name: "percent decreases", plan: with(func(p *rollout.Plan) { p.Steps[5].Audience.Percent = 2 }),
			want:        "rollout: steps[5].audience.percent: 2 is below 5 in steps[4], the previous live step: percentages of a stage must not decrease, because a step never takes users out of a stage (those 5% keep live); roll back with Transition to an earlier state instead",
			explanation: "5 → 2 would not remove anyone: users keep the stage earlier steps gave them",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.plan.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want %q\n(%s)", tc.want, tc.explanation)
			}
			if !errors.Is(err, rollout.ErrInvalidPlan) {
				t.Errorf("error does not wrap ErrInvalidPlan: %v", err)
			}
			var fe *rollout.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error holds no *FieldError: %v", err)
			}
			if err.Error() != tc.want {
				t.Errorf("Validate() =\n%s\nwant\n%s\n(%s)", err, tc.want, tc.explanation)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		plan        rollout.Plan
		explanation string
	}{
		{"story", story(), "the typical rollout"},
		{"freeze then dualwrite", rollout.Plan{Experiment: "e", Steps: []rollout.Step{pct(freeze, 100), pct(dualwrite, 100), pct(live, 1)}},
			"freeze for the bulk copy, then dual-write, then read new"},
		{"base already dual-writing", rollout.Plan{Experiment: "e", Base: dualwrite, Steps: []rollout.Step{pct(live, 5)}},
			"a plan may start where an earlier one ended"},
		{"rollback stage after live", rollout.Plan{Experiment: "e", Steps: []rollout.Step{pct(dualwrite, 100), pct(live, 10), pct(shadow, 100)}},
			"live → shadow keeps the old store authoritative-complete: it is allowed"},
		{"rampdown back to live", rollout.Plan{Experiment: "e", Steps: []rollout.Step{pct(dualwrite, 100), pct(rampdown, 100), pct(live, 100)}},
			"the new store stays authoritative"},
		{"smaller percent of a later stage", rollout.Plan{Experiment: "e", Steps: []rollout.Step{pct(dualwrite, 100), pct(live, 50), pct(rampdown, 10)}},
			"monotonicity is per stage"},
		{"same percent twice", rollout.Plan{Experiment: "e", Steps: []rollout.Step{pct(dualwrite, 100), pct(live, 5), pct(live, 5)}},
			"not decreasing"},
	} {
		if err := tc.plan.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil (%s)", tc.name, err, tc.explanation)
		}
	}
}

func TestEvaluate(t *testing.T) {
	p := story()
	in5 := keyIn(t, p.Experiment, 0, 500)          // in 5%
	in25 := keyIn(t, p.Experiment, 500, 2500)      // in 25% but not 5%
	outside := keyIn(t, p.Experiment, 2500, 10000) // in neither
	for _, tc := range []struct {
		name        string
		step        int
		key         string
		attrs       map[string]string
		stage       envelope.Stage
		reason      string
		explanation string
	}{
		{"nothing applied", 0, "123", nil, off, "DEFAULT base", "no step applied: the base stage"},
		{"everyone dual-writes", 1, outside, nil, dualwrite, "SPLIT steps[0] percent", "100% is everyone"},
		{"anonymous in 100%", 1, "", nil, dualwrite, "SPLIT steps[0] percent", "100% includes callers without a targeting key"},
		{"testing group", 3, "123", nil, live, "TARGETING_MATCH steps[2] user", "explicit user"},
		{"not in testing group", 3, outside, map[string]string{"country": "IN"}, shadow, "SPLIT steps[1] percent",
			"the country rule is in step 3, not yet applied"},
		{"country rule", 4, outside, map[string]string{"country": "IN"}, live, "TARGETING_MATCH steps[3] rule country", "attribute rule"},
		{"plan rule", 4, outside, map[string]string{"country": "DE", "plan": "pro"}, live, "TARGETING_MATCH steps[3] rule plan",
			"rules are ORed: any matching rule is enough"},
		{"anonymous rule", 4, "", map[string]string{"country": "US"}, live, "TARGETING_MATCH steps[3] rule country",
			"rules match without a targeting key"},
		{"rule does not match", 4, outside, map[string]string{"country": "DE", "plan": "free"}, shadow, "SPLIT steps[1] percent",
			"users no later step targets keep the earlier stage"},
		{"latest step wins", 4, "123", map[string]string{"country": "IN"}, live, "TARGETING_MATCH steps[3] rule country",
			"123 is in the testing group (step 2) and in India (step 3): the latest targeting step gives the stage and the reason"},
		{"5%", 5, in5, nil, live, "SPLIT steps[4] percent", "bucket < 500"},
		{"not yet 5%", 5, in25, nil, shadow, "SPLIT steps[1] percent", "bucket ≥ 500"},
		{"anonymous below 100%", 5, "", nil, shadow, "SPLIT steps[1] percent", "an empty key is never bucketed into a partial percentage"},
		{"25% keeps the 5%", 6, in5, nil, live, "SPLIT steps[5] percent", "raising 5 → 25 keeps the first 5%"},
		{"25%", 6, in25, nil, live, "SPLIT steps[5] percent", "bucket < 2500"},
		{"outside 25%", 6, outside, nil, shadow, "SPLIT steps[1] percent", "bucket ≥ 2500"},
		{"rampdown", 8, "123", nil, rampdown, "SPLIT steps[7] percent", "a later 100% step overrides explicit users of earlier steps"},
		{"complete", 9, outside, nil, complete, "SPLIT steps[8] percent", "every step applied"},
		{"clamped high", 99, outside, nil, complete, "SPLIT steps[8] percent", "a state past the end is the end"},
		{"clamped low", -3, "123", nil, off, "DEFAULT base", "a negative state is no step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stage, reason := rollout.Evaluate(p, rollout.State{Step: tc.step}, tc.key, tc.attrs)
			if stage != tc.stage || reason != tc.reason {
				t.Errorf("Evaluate(step %d, %q, %v) = %s, %q; want %s, %q (%s)", tc.step, tc.key, tc.attrs, stage, reason, tc.stage, tc.reason, tc.explanation)
			}
		})
	}
}

// Within one step, explicit users take precedence over rules, and rules over
// the percentage: the stage is the step's either way, the reason is the most
// specific match.
func TestEvaluatePrecedenceWithinStep(t *testing.T) {
	p := rollout.Plan{Experiment: "orders", Base: dualwrite, Steps: []rollout.Step{{
		Stage: live,
		Audience: rollout.Audience{
			Users:   []string{"123"},
			Rules:   []rollout.Rule{{Attribute: "country", In: []string{"IN"}}},
			Percent: 100,
		},
	}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	india := map[string]string{"country": "IN"}
	for _, tc := range []struct {
		key    string
		attrs  map[string]string
		reason string
		match  string
	}{
		{"123", india, "TARGETING_MATCH", rollout.MatchUser},
		{"999", india, "TARGETING_MATCH", rollout.MatchRule},
		{"999", nil, "SPLIT", rollout.MatchPercent},
	} {
		d := rollout.Decide(p, rollout.State{Step: 1}, tc.key, tc.attrs)
		if d.Stage != live || d.Reason != tc.reason || d.Match != tc.match || d.Step != 0 {
			t.Errorf("Decide(%q, %v) = %+v, want live %s %s at step 0", tc.key, tc.attrs, d, tc.reason, tc.match)
		}
	}
	if d := rollout.Decide(p, rollout.State{}, "123", india); d.Stage != dualwrite || d.Reason != "DEFAULT" || d.Step != -1 {
		t.Errorf("Decide at state 0 = %+v, want the base dualwrite, DEFAULT, step -1", d)
	}
}

func TestStickiness(t *testing.T) {
	p := story()
	for i := range 1000 {
		key := fmt.Sprintf("user-%d", i)
		s1, r1 := rollout.Evaluate(p, rollout.State{Step: 6}, key, nil)
		for range 3 {
			s2, r2 := rollout.Evaluate(p, rollout.State{Step: 6}, key, nil)
			if s1 != s2 || r1 != r2 {
				t.Fatalf("%s: %s %q then %s %q", key, s1, r1, s2, r2)
			}
		}
		// The bucket depends on the experiment and the key only, not on
		// the plan's steps.
		if rollout.Bucket("orders", key) != rollout.Bucket(p.Experiment, key) {
			t.Fatal("bucket differs")
		}
	}
}

// The users at 5% are a subset of those at 25%, and the observed fractions
// are within 0.5 points of the percentages over 100k keys.
func TestMonotonicPercentages(t *testing.T) {
	const n = 100_000
	p := story()
	at := func(step int, key string) bool {
		s, _ := rollout.Evaluate(p, rollout.State{Step: step}, key, nil)
		return s == live
	}
	var n5, n25 int
	for i := range n {
		key := fmt.Sprintf("user-%d", i)
		in5, in25 := at(5, key), at(6, key)
		if in5 && !in25 {
			t.Fatalf("%s is live at 5%% but not at 25%%", key)
		}
		if in5 {
			n5++
		}
		if in25 {
			n25++
		}
	}
	for _, c := range []struct {
		percent float64
		count   int
	}{{5, n5}, {25, n25}} {
		if got := float64(c.count) / n * 100; math.Abs(got-c.percent) > 0.5 {
			t.Errorf("%v%%: observed %.3f%% of %d keys", c.percent, got, n)
		}
	}
	// Finer percentages nest too, in another experiment.
	prev := -1
	for _, pc := range []float64{0.01, 0.5, 1, 10, 50, 99.99, 100} {
		count := 0
		for i := range n {
			if rollout.InPercent(rollout.Bucket("checkout", fmt.Sprint(i)), pc) {
				count++
			}
		}
		if count < prev {
			t.Errorf("%v%% has %d keys, fewer than the smaller percentage's %d", pc, count, prev)
		}
		if got := float64(count) / n * 100; math.Abs(got-pc) > 0.5 {
			t.Errorf("%v%%: observed %.3f%%", pc, got)
		}
		prev = count
	}
}

func TestTransition(t *testing.T) {
	p := story()
	// short reaches rampdown and complete without 100% live, so rolling back
	// from complete can cross to live or to shadow depending on the target.
	short := rollout.Plan{Experiment: "orders", Steps: []rollout.Step{pct(dualwrite, 100), pct(shadow, 100), pct(live, 50), pct(complete, 10)}}
	for _, tc := range []struct {
		name        string
		plan        rollout.Plan
		from, to    int
		want        string // "" when allowed
		explanation string
	}{
		{"stay", p, 4, 4, "", "no change"},
		{"one step forward", p, 0, 1, "", "off → dualwrite for everyone"},
		{"several steps forward after dualwrite", p, 1, 6, "", "everyone already dual-writes"},
		{"all the way from dualwrite", p, 1, 9, "", "dualwrite → complete is a data-safe jump, if a bold one"},
		{"rollback to off before rampdown", p, 7, 0, "", "live → off: the old store is still written"},
		{"rollback from complete to live", p, 9, 7, "", "complete → live: the new store stays authoritative"},
		{"rollback from rampdown to 25% live", p, 8, 6, "rollout: unsafe transition: step 8 → 6: users at rampdown (steps[7]) would return to shadow (steps[1]); the old store has missed writes since it stopped being authoritative, so it cannot be authoritative again",
			"state 6 still has the 75% outside the 25% at shadow"},
		{"jump over dualwrite", p, 0, 2, "rollout: unsafe transition: step 0 → 2: users would reach shadow (steps[1]) while users at off (base) have not been dual-writing, so the new store lacks their writes; apply a dualwrite step for everyone first and let it run",
			"the dualwrite step must run before anyone shadows"},
		{"rollback from rampdown to shadow", p, 8, 2, "rollout: unsafe transition: step 8 → 2: users at rampdown (steps[7]) would return to shadow (steps[1]); the old store has missed writes since it stopped being authoritative, so it cannot be authoritative again",
			"rampdown → shadow makes the old store authoritative again"},
		{"rollback from complete to off", p, 9, 0, "rollout: unsafe transition: step 9 → 0: users at complete (steps[8]) would return to off (base); the old store has missed writes since it stopped being authoritative, so it cannot be authoritative again",
			"complete → off"},
		{"partial complete back to partial live", short, 4, 3, "rollout: unsafe transition: step 4 → 3: users at complete (steps[3]) would return to shadow (steps[1]); the old store has missed writes since it stopped being authoritative, so it cannot be authoritative again",
			"state 3 has shadow users; the complete 10% might be among them, so the analysis refuses"},
		{"invalid plan", rollout.Plan{Experiment: "orders"}, 0, 0, "rollout: steps: the plan is empty; give it at least one step", "the plan is validated first"},
		{"state out of range", p, 0, 10, "rollout: invalid state: to.step 10 is outside 0..9", "states run from 0 to len(steps)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rollout.Transition(tc.plan, rollout.State{Step: tc.from}, rollout.State{Step: tc.to})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Transition(%d → %d) = %q\nwant %q\n(%s)", tc.from, tc.to, got, tc.want, tc.explanation)
			}
			if strings.Contains(tc.want, "unsafe transition") && !errors.Is(err, rollout.ErrUnsafeTransition) {
				t.Errorf("error does not wrap ErrUnsafeTransition")
			}
		})
	}
}

func TestKill(t *testing.T) {
	p := story()
	short := rollout.Plan{Experiment: "orders", Steps: []rollout.Step{pct(dualwrite, 100), pct(live, 50), pct(rampdown, 20), pct(complete, 10)}}
	for _, tc := range []struct {
		name        string
		plan        rollout.Plan
		from, want  int
		explanation string
	}{
		{"at off", p, 0, 0, "nothing to undo"},
		{"dual-writing", p, 1, 0, "old store authoritative: back to off"},
		{"25% live", p, 6, 0, "live still writes the old store: back to off"},
		{"100% live", p, 7, 0, "still before the boundary"},
		{"rampdown", p, 8, 8, "past the boundary with the old store still written: nothing safer to go back to"},
		{"complete", p, 9, 8, "back to rampdown: the old store is written again"},
		{"clamped", p, 42, 8, "a state past the end is the end"},
		{"partial complete", short, 4, 4, "the analysis does not use the nesting of percentages, so it cannot prove the 10% at complete would not reach dualwrite in state 3: Kill stays put"},
		{"partial rampdown", short, 3, 3, "20% rampdown: live and dualwrite users stay, nothing can go back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rollout.Kill(tc.plan, rollout.State{Step: tc.from})
			if got.Step != tc.want {
				t.Errorf("Kill(%d) = %d, want %d (%s)", tc.from, got.Step, tc.want, tc.explanation)
			}
			from := min(tc.from, len(tc.plan.Steps))
			if err := rollout.Transition(tc.plan, rollout.State{Step: from}, got); err != nil {
				t.Errorf("Kill's answer is a transition Transition refuses: %v", err)
			}
		})
	}
}

// Kill never returns a state Transition refuses, for every state of the story.
func TestKillAlwaysAllowed(t *testing.T) {
	p := story()
	for n := range len(p.Steps) + 1 {
		k := rollout.Kill(p, rollout.State{Step: n})
		if k.Step > n {
			t.Errorf("Kill(%d) = %d moves forward", n, k.Step)
		}
		if err := rollout.Transition(p, rollout.State{Step: n}, k); err != nil {
			t.Errorf("Kill(%d) = %d: %v", n, k.Step, err)
		}
	}
}

func TestJSON(t *testing.T) {
	p := story()
	p.AutoPromote = true
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"experiment":"orders"`, `"auto_promote":true`, `"steps":[`, `"stage":"dualwrite"`, `"hold":"1h0m0s"`,
		`"gate":"consistency"`, `"users":["123","456"]`, `"rules":[{"attribute":"country","in":["IN","US"]}`, `"percent":5`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("JSON lacks %s:\n%s", field, b)
		}
	}
	var back rollout.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"steps":[{"stage":"dualwrite","hold":"soon"}]}`, `{"steps":[{"stage":"dualwrite","hold_ns":5}]}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
	if s, _ := json.Marshal(rollout.State{Step: 3}); string(s) != `{"step":3}` {
		t.Errorf("State JSON = %s", s)
	}
}

// Evaluate is on the application's path through the OpenFeature provider.
func TestDecideAllocs(t *testing.T) {
	p := story()
	attrs := map[string]string{"country": "DE"}
	if n := testing.AllocsPerRun(100, func() { rollout.Decide(p, rollout.State{Step: 6}, "user-42", attrs) }); n != 0 {
		t.Errorf("Decide allocates %v times", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	p := story()
	attrs := map[string]string{"country": "DE", "plan": "free"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rollout.Decide(p, rollout.State{Step: 6}, "user-42", attrs)
	}
}

func TestStringAttrs(t *testing.T) {
	got := rollout.StringAttrs(map[string]any{"country": "IN", "pro": true, "age": 42, "n": int64(-7), "score": 0.5, "whole": 3.0, "list": []string{"x"}, "nil": nil})
	want := map[string]string{"country": "IN", "pro": "true", "age": "42", "n": "-7", "score": "0.5", "whole": "3"}
	if len(got) != len(want) {
		t.Fatalf("StringAttrs = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestDocumentValidate(t *testing.T) {
	plan := rollout.Plan{Experiment: "orders", Steps: []rollout.Step{{Stage: envelope.StageDualWrite, Audience: rollout.Audience{Percent: 100}}}}
	good := rollout.Document{Version: rollout.DocumentVersion, Flag: "orders.migration", Plan: plan, State: rollout.State{Step: 1}, Status: rollout.StatusActive, Revision: 3}
	b, _ := json.Marshal(good)
	if d, err := rollout.ParseDocument(b); err != nil || d.Revision != 3 || d.State.Step != 1 {
		t.Fatalf("ParseDocument = %+v, %v", d, err)
	}
	for name, mut := range map[string]func(*rollout.Document){
		"flag with a space":  func(d *rollout.Document) { d.Flag = "orders migration" },
		"flag ending in dot": func(d *rollout.Document) { d.Flag = "orders." },
		"empty flag":         func(d *rollout.Document) { d.Flag = "" },
		"step past the plan": func(d *rollout.Document) { d.State.Step = 2 },
		"zero revision":      func(d *rollout.Document) { d.Revision = 0 },
		"no version":         func(d *rollout.Document) { d.Version = 0 },
		"a later version":    func(d *rollout.Document) { d.Version = 2 },
		"invalid plan":       func(d *rollout.Document) { d.Plan.Steps = nil },
	} {
		d := good
		mut(&d)
		if err := d.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
	if _, err := rollout.ParseDocument([]byte(`{"flag":`)); err == nil {
		t.Error("ParseDocument accepted truncated JSON")
	}
}
