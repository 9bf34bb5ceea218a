package redact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestValue(t *testing.T) {
	r, err := New([]Rule{{"user.email", Mask}, {"items[*].card", Hash}, {"**.ssn", Mask}}, key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in string
		path     []any
		want     []string // substrings that must appear
		gone     []string // substrings that must not
	}{
		{"masked member", `{"user":{"email":"ann@example.com","name":"Ann"}}`, nil, []string{`"email":"[redacted]"`, `"name":"Ann"`}, []string{"ann@example.com"}},
		{"hashed in every element", `{"items":[{"card":"4111111111111111"},{"card":"4111111111111111"},{"card":"5500"}]}`, nil, []string{`"card":"hmac:`}, []string{"4111111111111111", "5500"}},
		{"any depth", `{"a":[{"b":{"ssn":"123-45-6789"}}],"ssn":"987"}`, nil, []string{`"ssn":"[redacted]"`}, []string{"123-45-6789", `"987"`}},
		{"value at a redacted place", `"ann@example.com"`, []any{"user", "email"}, []string{`"[redacted]"`}, []string{"ann@"}},
		{"value above a redacted place", `{"email":"ann@example.com"}`, []any{"user"}, []string{`"[redacted]"`}, []string{"ann@"}},
		{"unrelated value untouched", `{"total":12345678901234567890}`, nil, []string{`12345678901234567890`}, nil},
		{"cut value that might hold one is withheld", `{"email":"ann@exa…`, []any{"user"}, []string{"withheld"}, []string{"ann@"}},
		{"cut value under a glob rule is withheld", `{"price":12…`, []any{"order"}, []string{"withheld"}, nil}, // **.ssn could be inside
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(r.Value(tt.path, json.RawMessage(tt.in)))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Value = %s, lacks %s", got, w)
				}
			}
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("Value = %s, still holds %s", got, g)
				}
			}
		})
	}
	// Equal values hash equally, different ones differently: a mismatch
	// stays visible after hashing.
	a := r.Value(nil, json.RawMessage(`{"items":[{"card":"1"},{"card":"1"},{"card":"2"}]}`))
	var doc struct{ Items []struct{ Card string } }
	_ = json.Unmarshal(a, &doc)
	if doc.Items[0].Card != doc.Items[1].Card || doc.Items[0].Card == doc.Items[2].Card {
		t.Errorf("hashes %+v: equal values must hash equal, different ones differ", doc.Items)
	}
}

// TestWhereUsersExpect: a rule matches its field whatever the case of the
// field's name, and inside a root array of documents; **.field at any
// depth. Before, the array's documents and "Email" kept their secrets.
func TestWhereUsersExpect(t *testing.T) {
	r, err := New([]Rule{{"user.email", Mask}, {"Card", Hash}, {"**.SSN", Mask}}, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, in string
		path     []any
		gone     []string
		kept     []string
	}{
		{"root array of documents", `[{"user":{"email":"ann@example.com","name":"Ann"}},{"user":{"email":"bob@example.com"}}]`, nil, []string{"ann@", "bob@"}, []string{`"name":"Ann"`}},
		{"array of arrays", `[[{"card":"4111"}],[{"card":"5500"}]]`, nil, []string{"4111", "5500"}, nil},
		{"field name in another case", `{"User":{"EMAIL":"ann@example.com"},"CARD":"4111"}`, nil, []string{"ann@", "4111"}, nil},
		{"any depth, any case", `[{"a":{"b":[{"Ssn":"123-45-6789"}]}}]`, nil, []string{"123-45-6789"}, nil},
		{"a value at an element's field", `"ann@example.com"`, []any{3, "user", "email"}, []string{"ann@"}, nil},
		{"the same name deeper is not the rule's place", `{"order":{"user":{"email":"shop@example.com"}}}`, nil, nil, []string{"shop@"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := string(r.Value(tt.path, json.RawMessage(tt.in)))
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("Value = %s, still holds %s", got, g)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(got, k) {
					t.Errorf("Value = %s, lost %s", got, k)
				}
			}
		})
	}
	diffs := r.Differences(json.RawMessage(`[{"path":"[2].user.email","pattern":"[*].user.email","kind":"changed","control":"\"ann@example.com\"","candidate":"\"bob@example.com\""}]`))
	if strings.Contains(string(diffs), "@example.com") {
		t.Errorf("Differences = %s: a difference inside a root array kept its values", diffs)
	}
}

func TestCutValueOutsideRulesKept(t *testing.T) {
	r, _ := New([]Rule{{"user.email", Mask}}, nil)
	if got := string(r.Value([]any{"order"}, json.RawMessage(`{"price":12…`))); got != `{"price":12…` {
		t.Errorf("Value = %s: a value no rule reaches must be kept as is", got)
	}
}

func TestObservationAndDifferences(t *testing.T) {
	r, _ := New([]Rule{{"user.email", Mask}}, nil)
	obs := r.Observation(json.RawMessage(`{"value":{"user":{"email":"ann@example.com"}},"duration_ns":5}`))
	if strings.Contains(string(obs), "ann@") || !strings.Contains(string(obs), `"duration_ns":5`) {
		t.Errorf("Observation = %s", obs)
	}
	diffs := r.Differences(json.RawMessage(`[{"path":"user.email","pattern":"user.email","kind":"changed","control":"\"ann@example.com\"","candidate":"\"ann@example.org\""},
		{"path":"user","pattern":"user","kind":"type_changed","control":"{\"email\":\"ann@example.com\"}","candidate":"null"},
		{"path":"total","pattern":"total","kind":"changed","control":"1","candidate":"2"}]`))
	if strings.Contains(string(diffs), "ann@") || !strings.Contains(string(diffs), `"control":"1"`) {
		t.Errorf("Differences = %s", diffs)
	}
}

func TestNewRejects(t *testing.T) {
	for _, rules := range [][]Rule{{{"items[3]", Mask}}, {{"a", "blur"}}, {{"a", Hash}}} {
		if _, err := New(rules, nil); !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "rules[0]") {
			t.Errorf("New(%v) = %v, want an error naming rules[0]", rules, err)
		}
	}
	var none *Redactor
	if none.Active() || string(none.Value(nil, json.RawMessage(`{"a":1}`))) != `{"a":1}` {
		t.Error("a nil redactor must leave values alone")
	}
}
