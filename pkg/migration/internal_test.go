package migration

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/envelope"
)

// The sampling hash is a contract: clients in other languages and other
// versions of this one must put the same users in the sample.
func TestKeyHashGolden(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint64
	}{
		// Checked against an independent implementation (Python).
		{"", 0xefd01f60ba992926},
		{"123", 0x524a1b3819ef1018},
		{"user-456", 0xcf3484802f5dfbd1},
	} {
		if got := keyHash(tc.key); got != tc.want {
			t.Errorf("keyHash(%q) = %#x, want %#x", tc.key, got, tc.want)
		}
	}
}

func TestInSample(t *testing.T) {
	for _, n := range []uint64{2, 3, 4, 10, 100} {
		in := 0
		const users = 20000
		for i := range users {
			key := fmt.Sprintf("user-%d", i)
			got := inSample(key, n)
			if got != inSample(key, n) {
				t.Fatalf("inSample(%q, %d) is not deterministic", key, n)
			}
			if got {
				in++
			}
		}
		want := float64(users) / float64(n)
		if math.Abs(float64(in)-want) > 5*math.Sqrt(want) {
			t.Errorf("n=%d: %d of %d users in the sample, want about %.0f", n, in, users, want)
		}
	}
	for i := range 100 {
		key := fmt.Sprintf("k%d", i)
		if !inSample(key, 1) {
			t.Fatalf("inSample(%q, 1) = false", key)
		}
		if inSample(key, 0) {
			t.Fatalf("inSample(%q, 0) = true", key)
		}
	}
}

// validName must accept exactly the attribute names envelope.Pair.Validate
// accepts, or pairs would be dropped as invalid downstream.
func TestValidNameAgreesWithEnvelope(t *testing.T) {
	names := []string{"", "a", "country", "plan_tier", "A-Z_09", "has space", "dot.ted", "colon:x",
		"ünï", "tab\t", strings.Repeat("x", envelope.MaxNameLen), strings.Repeat("x", envelope.MaxNameLen+1)}
	for c := 0; c < 256; c++ {
		names = append(names, "x"+string(rune(c)))
	}
	for _, name := range names {
		p := envelope.Pair{
			Version: envelope.Version, ID: "id", Experiment: "e", Operation: "o",
			Kind: envelope.KindRead, Time: time.Unix(1, 0), Stage: envelope.StageOff,
			User: envelope.User{Attrs: map[string]string{name: "v"}},
		}
		envelopeOK := p.Validate() == nil
		if validName(name) != envelopeOK {
			t.Errorf("validName(%q) = %v, envelope accepts it: %v", name, validName(name), envelopeOK)
		}
	}
}

func TestUser(t *testing.T) {
	long := strings.Repeat("é", envelope.MaxAttrValueLen) // 2 bytes a rune
	many := map[string]any{}
	for i := range envelope.MaxAttrs + 4 {
		many[fmt.Sprintf("a%02d", i)] = i
	}
	wantMany := map[string]string{}
	for i := range envelope.MaxAttrs {
		wantMany[fmt.Sprintf("a%02d", i)] = fmt.Sprint(i)
	}
	for _, tc := range []struct {
		name        string
		key         string
		ec, tc      openfeature.EvaluationContext
		want        envelope.User
		explanation string
	}{
		{
			name: "scalars", key: "123",
			ec: openfeature.NewEvaluationContext("123", map[string]any{
				"country": "IN", "plan": "pro", "age": 42, "vip": true, "score": 1.5,
				"small": int8(-3), "big": uint64(math.MaxUint64), "ratio": float32(0.25),
			}),
			want: envelope.User{Key: "123", Attrs: map[string]string{
				"country": "IN", "plan": "pro", "age": "42", "vip": "true", "score": "1.5",
				"small": "-3", "big": "18446744073709551615", "ratio": "0.25",
			}},
		},
		{
			name: "non-scalars and bad names are dropped", key: "u",
			ec: openfeature.NewEvaluationContext("u", map[string]any{
				"tags": []string{"a"}, "meta": map[string]any{"x": 1}, "when": time.Unix(0, 0),
				"nil": nil, "bad name": "x", "dot.ted": "x", "ok": "yes",
			}),
			want:        envelope.User{Key: "u", Attrs: map[string]string{"ok": "yes"}},
			explanation: "segment attributes are scalars with envelope names; anything else would make the pair invalid",
		},
		{
			name: "long values are cut on a rune boundary", key: strings.Repeat("k", envelope.MaxUserKeyLen+10),
			ec:   openfeature.NewEvaluationContext("", map[string]any{"v": long}),
			want: envelope.User{Key: strings.Repeat("k", envelope.MaxUserKeyLen), Attrs: map[string]string{"v": long[:envelope.MaxAttrValueLen]}},
		},
		{
			name: "at most MaxAttrs, first by name", key: "u",
			ec:   openfeature.NewEvaluationContext("u", many),
			want: envelope.User{Key: "u", Attrs: wantMany},
		},
		{
			name: "transaction context merged, invocation wins", key: "u",
			ec:          openfeature.NewEvaluationContext("u", map[string]any{"plan": "pro", "region": []int{1}}),
			tc:          openfeature.NewEvaluationContext("t", map[string]any{"plan": "free", "country": "US", "region": "eu"}),
			want:        envelope.User{Key: "u", Attrs: map[string]string{"plan": "pro", "country": "US"}},
			explanation: "a non-scalar in the invocation context hides the transaction's value, as OpenFeature's merge would",
		},
		{
			name: "no attributes", key: "u",
			ec:   openfeature.NewEvaluationContext("u", nil),
			want: envelope.User{Key: "u"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := user(tc.key, tc.ec, tc.tc)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user() mismatch (-want +got):\n%s\n%s", diff, tc.explanation)
			}
			p := envelope.Pair{Version: envelope.Version, ID: "id", Experiment: "e", Operation: "o",
				Kind: envelope.KindRead, Time: time.Unix(1, 0), Stage: envelope.StageOff, User: got}
			if err := p.Validate(); err != nil {
				t.Errorf("the user makes an invalid pair: %v", err)
			}
		})
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"},
		{"aé", 3, "aé"},
		{"€", 2, ""},
	} {
		if got := truncateUTF8(tc.s, tc.n); got != tc.want {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

type badJSON struct{}

func (badJSON) MarshalJSON() ([]byte, error) { panic("boom") }

type errorPanics struct{}

func (errorPanics) Error() string { panic("no text") }

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       any
		wantErr string
	}{
		{"ok", map[string]int{"a": 1}, ""},
		{"unsupported type", make(chan int), "migration: cannot encode the result as JSON: json: unsupported type: chan int"},
		{"NaN", math.NaN(), "migration: cannot encode the result as JSON: json: unsupported value: NaN"},
		{"panicking MarshalJSON", badJSON{}, "migration: cannot encode the result as JSON: panic: boom"},
		{"too large", strings.Repeat("x", maxValueLen), fmt.Sprintf("migration: the result is %d bytes of JSON, more than the %d a pair carries", maxValueLen+2, maxValueLen)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, errText := encode(tc.v)
			if errText != tc.wantErr {
				t.Errorf("encode error = %q, want %q", errText, tc.wantErr)
			}
			if (b == nil) != (tc.wantErr != "") {
				t.Errorf("encode value = %q with error %q", b, errText)
			}
		})
	}
	if got, want := safeError(errorPanics{}), "migration: the error's Error method panicked: no text"; got != want {
		t.Errorf("safeError = %q, want %q", got, want)
	}
}
