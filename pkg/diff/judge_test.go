package diff

import (
	"slices"
	"testing"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
)

func obs(value, errText string, status envelope.Status) envelope.Observation {
	o := envelope.Observation{Error: errText, Status: status, DurationNS: 1000}
	if value != "" {
		o.Value = []byte(value)
	}
	return o
}

func pair(op string, control, candidate envelope.Observation) *envelope.Pair {
	return &envelope.Pair{
		Version: envelope.Version, ID: "p1", Experiment: "exp", Operation: op, Kind: envelope.KindRead,
		Time: time.Unix(1700000000, 0), Stage: envelope.StageShadow, User: envelope.User{Key: "u1"},
		Control: control, Candidate: candidate,
	}
}

func TestJudge(t *testing.T) {
	d, err := Compile(Rules{
		Version: 7,
		Default: OperationRules{Errors: []ErrorClass{
			{Class: "not_found", Contains: "no rows in result set"},
			{Class: "not_found", Regexp: `(?i)\bnot found\b`},
		}},
		Operations: map[string]OperationRules{
			"get_user": {Ignore: []string{"updated_at"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ok := func(v string) envelope.Observation { return obs(v, "", "") }
	failed := func(e string) envelope.Observation { return obs("", e, "") }
	cases := []struct {
		name        string
		pair        *envelope.Pair
		verdict     Verdict
		diffs       []Difference
		explanation string
	}{
		{name: "match", pair: pair("op", ok(`{"a":1}`), ok(`{"a":1}`)), verdict: VerdictMatch},
		{name: "mismatch", pair: pair("op", ok(`{"a":1}`), ok(`{"a":2}`)), verdict: VerdictMismatch,
			diffs: []Difference{df("a", "a", Changed, "1", "2")}},
		{name: "operation rules apply", pair: pair("get_user", ok(`{"updated_at":1}`), ok(`{"updated_at":2}`)), verdict: VerdictMatch},
		{name: "other operations use the default", pair: pair("list", ok(`{"updated_at":1}`), ok(`{"updated_at":2}`)), verdict: VerdictMismatch,
			diffs: []Difference{df("updated_at", "updated_at", Changed, "1", "2")}},
		{name: "write skipped", pair: pair("op", failed("boom"), obs("", "", envelope.StatusSkipped)), verdict: VerdictWriteSkipped,
			explanation: "a skipped side is never compared, whatever the other did"},
		{name: "control skipped", pair: pair("op", obs("", "", envelope.StatusSkipped), ok(`1`)), verdict: VerdictWriteSkipped},
		{name: "candidate timeout", pair: pair("op", ok(`1`), obs("", "context deadline exceeded", envelope.StatusTimeout)), verdict: VerdictCandidateTimeout},
		{name: "both timed out", pair: pair("op", obs("", "", envelope.StatusTimeout), obs("", "", envelope.StatusTimeout)), verdict: VerdictBothErrorSame,
			explanation: "candidate_timeout blames the candidate only when control answered; two timeouts are one error class"},
		{name: "control error, candidate timeout", pair: pair("op", failed("boom"), obs("", "", envelope.StatusTimeout)), verdict: VerdictBothErrorDiff},
		{name: "control error", pair: pair("op", failed("boom"), ok(`1`)), verdict: VerdictControlError},
		{name: "control timeout", pair: pair("op", obs("", "", envelope.StatusTimeout), ok(`1`)), verdict: VerdictControlError},
		{name: "candidate error", pair: pair("op", ok(`1`), failed("boom")), verdict: VerdictCandidateError},
		{name: "candidate panic", pair: pair("op", ok(`1`), obs("", "nil map", envelope.StatusPanic)), verdict: VerdictCandidateError},
		{name: "same error text", pair: pair("op", failed(" boom\n"), failed("boom")), verdict: VerdictBothErrorSame,
			explanation: "an unmatched error's class is its trimmed text"},
		{name: "different error text", pair: pair("op", failed("boom"), failed("bang")), verdict: VerdictBothErrorDiff},
		{name: "error classes", pair: pair("op", failed("sql: no rows in result set"), failed("item Not Found")), verdict: VerdictBothErrorSame,
			explanation: "rules map both texts to the class not_found"},
		{name: "status error with a value", pair: pair("op", obs(`1`, "partial", envelope.StatusError), ok(`1`)), verdict: VerdictControlError},
		{name: "invalid JSON value", pair: pair("op", ok(`{`), ok(`{}`)), verdict: VerdictInvalidJSON},
		{name: "nil pair", pair: nil, verdict: VerdictInvalidJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := d.Explain(c.pair)
			sameShape(t, d.Judge(c.pair), got)
			if got.Verdict != c.verdict {
				t.Errorf("verdict = %s, want %s (%s); reason %q", got.Verdict, c.verdict, c.explanation, got.Reason)
			}
			if !slices.Equal(got.Diffs, c.diffs) {
				t.Errorf("diffs = %+v, want %+v", got.Diffs, c.diffs)
			}
			if got.RulesVersion != 7 {
				t.Errorf("rules version = %d, want 7", got.RulesVersion)
			}
		})
	}
}

func TestErrorClass(t *testing.T) {
	d, err := Compile(Rules{Default: OperationRules{Errors: []ErrorClass{{Class: "nf", Contains: "not found"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    envelope.Observation
		want string
	}{
		{obs("", "  user not found ", ""), "nf"},
		{obs("", "  other\n", ""), "other"},
		{obs("", "not found", envelope.StatusTimeout), "timeout"},
	} {
		if got := d.ErrorClass("x", &c.o); got != c.want {
			t.Errorf("ErrorClass(%+v) = %q, want %q", c.o, got, c.want)
		}
	}
}
