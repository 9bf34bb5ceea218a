package migration

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/publish"
)

// clientVectors is testdata/client-vectors.json at the repository root: the
// hashing and formatting every Parity client must reproduce. The Node client
// (clients/node) reads the same file in its tests.
type clientVectors struct {
	Wire struct {
		EnvelopeVersion   int      `json:"envelope_version"`
		BatchVersion      int      `json:"batch_version"`
		MaxBatchPairs     int      `json:"max_batch_pairs"`
		HookBatchPairs    int      `json:"hook_batch_pairs"`
		HookBatchBytes    int      `json:"hook_batch_bytes"`
		HookLingerMS      int64    `json:"hook_linger_ms"`
		HookRecentIDMS    int64    `json:"hook_recent_id_window_ms"`
		PairSubjectPrefix string   `json:"pair_subject_prefix"`
		PairStream        string   `json:"pair_stream"`
		HookReportSubject string   `json:"hook_report_subject"`
		MsgIDHeader       string   `json:"msg_id_header"`
		MaxSize           int      `json:"max_size"`
		MaxNameLen        int      `json:"max_name_len"`
		MaxIDLen          int      `json:"max_id_len"`
		MaxUserKeyLen     int      `json:"max_user_key_len"`
		MaxAttrs          int      `json:"max_attrs"`
		MaxAttrValueLen   int      `json:"max_attr_value_len"`
		MaxErrorLen       int      `json:"max_error_len"`
		Stages            []string `json:"stages"`
	} `json:"wire"`
	Sampling []struct {
		Key  string          `json:"key"`
		Hash string          `json:"hash"`
		In   map[string]bool `json:"in"`
	} `json:"sampling"`
	Numbers []struct {
		Go     string      `json:"go"`
		Number json.Number `json:"number"`
		Text   string      `json:"text"`
	} `json:"numbers"`
	Truncate []struct {
		S    string `json:"s"`
		N    int    `json:"n"`
		Want string `json:"want"`
	} `json:"truncate"`
}

func readClientVectors(t *testing.T) clientVectors {
	t.Helper()
	b, err := os.ReadFile("../../testdata/client-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v clientVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("client-vectors.json: %v", err)
	}
	if len(v.Sampling) < 10 || len(v.Numbers) < 10 || len(v.Truncate) < 5 {
		t.Fatalf("client-vectors.json has %d sampling, %d number and %d truncate vectors; want at least 10, 10 and 5", len(v.Sampling), len(v.Numbers), len(v.Truncate))
	}
	return v
}

// TestClientVectors checks the Go hook against the vectors other clients
// are held to, so that a user is in or out of the sample, and lands in the
// same segment, whichever language served them.
func TestClientVectors(t *testing.T) {
	v := readClientVectors(t)
	ins := 0
	for _, s := range v.Sampling {
		if got := fmt.Sprintf("%016x", keyHash(s.Key)); got != s.Hash {
			t.Errorf("keyHash(%q) = %s, want %s", s.Key, got, s.Hash)
		}
		for ratio, want := range s.In {
			n, err := strconv.ParseUint(ratio, 10, 64)
			if err != nil {
				t.Fatalf("ratio %q: %v", ratio, err)
			}
			if got := inSample(s.Key, n); got != want {
				t.Errorf("inSample(%q, %d) = %v, want %v", s.Key, n, got, want)
			}
			if want {
				ins++
			}
		}
	}
	if ins == 0 {
		t.Error("no sampling vector is in its sample: the vectors cannot catch an inSample that always says no")
	}
	for _, n := range v.Numbers {
		var got string
		var ok bool
		switch n.Go {
		case "int":
			i, err := n.Number.Int64()
			if err != nil {
				t.Fatalf("number %s: %v", n.Number, err)
			}
			got, ok = scalar(i)
		case "float64":
			f, err := n.Number.Float64()
			if err != nil {
				t.Fatalf("number %s: %v", n.Number, err)
			}
			got, ok = scalar(f)
		default:
			t.Fatalf("number %s: unknown Go type %q", n.Number, n.Go)
		}
		if !ok || got != n.Text {
			t.Errorf("scalar(%s %s) = %q, %v; want %q", n.Go, n.Number, got, ok, n.Text)
		}
	}
	w := v.Wire
	var stages []string
	for _, s := range envelope.Stages {
		stages = append(stages, string(s))
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"envelope_version", envelope.Version, w.EnvelopeVersion},
		{"batch_version", envelope.BatchVersion, w.BatchVersion},
		{"max_batch_pairs", envelope.MaxBatchPairs, w.MaxBatchPairs},
		{"hook_batch_pairs", publish.DefaultBatchPairs, w.HookBatchPairs},
		{"hook_batch_bytes", publish.DefaultBatchBytes, w.HookBatchBytes},
		{"hook_linger_ms", publish.DefaultLinger.Milliseconds(), w.HookLingerMS},
		{"hook_recent_id_window_ms", publish.RecentIDWindow.Milliseconds(), w.HookRecentIDMS},
		{"pair_subject_prefix", natsnames.PairSubjectPrefix, w.PairSubjectPrefix},
		{"pair_stream", natsnames.PairStream, w.PairStream},
		{"hook_report_subject", natsnames.HookReportSubject, w.HookReportSubject},
		{"msg_id_header", jetstream.MsgIDHeader, w.MsgIDHeader},
		{"max_size", envelope.MaxSize, w.MaxSize},
		{"max_name_len", envelope.MaxNameLen, w.MaxNameLen},
		{"max_id_len", envelope.MaxIDLen, w.MaxIDLen},
		{"max_user_key_len", envelope.MaxUserKeyLen, w.MaxUserKeyLen},
		{"max_attrs", envelope.MaxAttrs, w.MaxAttrs},
		{"max_attr_value_len", envelope.MaxAttrValueLen, w.MaxAttrValueLen},
		{"max_error_len", envelope.MaxErrorLen, w.MaxErrorLen},
		{"stages", strings.Join(stages, ","), strings.Join(w.Stages, ",")},
	} {
		if c.got != c.want {
			t.Errorf("wire.%s: Go has %v, the vectors %v", c.name, c.got, c.want)
		}
	}
	for _, tc := range v.Truncate {
		if got := truncateUTF8(tc.S, tc.N); got != tc.Want {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tc.S, tc.N, got, tc.Want)
		}
	}
}
