package flagprovider

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/rollout"
)

// describe explains invalid documents in logs without the targeting keys or
// attribute values they contain.
func TestDescribeWithholdsValues(t *testing.T) {
	valid := rollout.Document{
		Version: rollout.DocumentVersion, Flag: "orders", Status: rollout.StatusActive, Revision: 1, UpdatedAt: time.Unix(0, 0).UTC(),
		Plan: rollout.Plan{Experiment: "orders", Steps: []rollout.Step{
			{Stage: envelope.StageDualWrite, Audience: rollout.Audience{Percent: 100}},
		}},
		State: rollout.State{Step: 1},
	}
	mutate := func(f func(*rollout.Document)) []byte {
		d := valid
		d.Plan.Steps = append([]rollout.Step(nil), valid.Plan.Steps...)
		f(&d)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name        string
		input       []byte
		want        string
		secret      string
		explanation string
	}{
		{"syntax", []byte(`{"flag": secret-user`), "invalid JSON at byte 10", "secret-user", ""},
		{"type", []byte(`{"flag": "orders", "revision": "secret-user"}`), `JSON field "revision" has the wrong type (want int64)`, "secret-user",
			"the JSON value of a wrongly typed field is not quoted"},
		{"user listed twice", mutate(func(d *rollout.Document) {
			d.Plan.Steps[0].Audience.Users = []string{"secret-user", "secret-user"}
		}), "steps[0].audience.users[1]: invalid (value not logged)", "secret-user", "rollout quotes the user; describe must not"},
		{"rule value listed twice", mutate(func(d *rollout.Document) {
			d.Plan.Steps[0].Audience.Rules = []rollout.Rule{{Attribute: "email", In: []string{"secret-user", "secret-user"}}}
		}), "steps[0].audience.rules[0].in[1]: invalid (value not logged)", "secret-user", ""},
		{"state", mutate(func(d *rollout.Document) { d.State.Step = 5 }), "state.step 5 is outside 0..1", "", ""},
		{"several problems", mutate(func(d *rollout.Document) { d.Plan.Experiment = ""; d.Plan.Steps[0].Hold = -1 }),
			"experiment: is empty; it salts the percentage hash, so every plan needs one; steps[0].hold: -1ns is negative", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rollout.ParseDocument(tt.input)
			if err == nil {
				t.Fatal("ParseDocument accepted the input")
			}
			got := describe(err)
			if !strings.Contains(got, tt.want) {
				t.Errorf("describe = %q, want it to contain %q", got, tt.want)
			}
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("describe = %q quotes %q; %s", got, tt.secret, tt.explanation)
			}
		})
	}
}
