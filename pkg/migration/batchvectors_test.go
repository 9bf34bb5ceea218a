package migration

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
)

var updateBatchVectors = flag.Bool("update-batch-vectors", false, "rewrite the batches section of testdata/client-vectors.json from batchVectorCases")

// batchVector is one case of client-vectors.json's "batches": pairs
// waiting at once in a publisher with these limits, and the messages it
// must send, byte for byte. The Node client's tests pack the same pairs and
// must produce the same bytes, so what Node sends is what Go's decoder is
// checked against here.
type batchVector struct {
	Explanation string   `json:"explanation"`
	MaxPairs    int      `json:"max_pairs"`
	MaxBytes    int      `json:"max_bytes"`
	Pairs       []string `json:"pairs"`
	Messages    []struct {
		Subject string `json:"subject"`
		ID      string `json:"id"`
		Data    string `json:"data"`
	} `json:"messages"`
}

// vectorPair is pair i of experiment exp and operation op, with a fixed id
// and time, and pad in its control value and its candidate's error.
func vectorPair(exp, op string, i int, pad string) *envelope.Pair {
	return &envelope.Pair{
		ID: fmt.Sprintf("%s-%s-%d", exp, op, i), Experiment: exp, Operation: op, Kind: envelope.KindRead,
		Time:  time.Date(2026, 11, 21, 10, 15, 30, 123456789*(i%2), time.UTC),
		Stage: envelope.StageShadow,
		User:  envelope.User{Key: fmt.Sprintf("üser-🙂-%d", i), Attrs: map[string]string{"plan": "pro", "country": "IN"}},
		Flag:  &envelope.Flag{Key: "orders-stage", Variant: "shadow", Reason: "TARGETING_MATCH"},
		Control: envelope.Observation{
			Value:      json.RawMessage(fmt.Sprintf(`{"id":%d,"note":%q,"items":[{"sku":"a","price":2.5}],"paid":true,"gift":null}`, i, pad)),
			DurationNS: 1200,
		},
		Candidate: envelope.Observation{Error: "pq: \"orders\" timed out\n\tafter " + pad, Status: envelope.StatusError, DurationNS: 900},
	}
}

// batchVectorCases are the inputs of the batch vectors: the limits and the
// pairs in the order they were published.
func batchVectorCases() []struct {
	explanation        string
	maxPairs, maxBytes int
	pairs              []*envelope.Pair
} {
	type c = struct {
		explanation        string
		maxPairs, maxBytes int
		pairs              []*envelope.Pair
	}
	var out []c
	out = append(out, c{"one pair waiting alone is sent as its own version-1 envelope with its own id", 64, 256 << 10,
		[]*envelope.Pair{vectorPair("orders", "GetOrder", 0, "solo")}})
	var two []*envelope.Pair
	for i := range 7 {
		if i%3 == 2 {
			two = append(two, vectorPair("orders", "PlaceOrder", i, "w"))
		} else {
			two = append(two, vectorPair("orders", "GetOrder", i, "r"))
		}
	}
	out = append(out, c{"two subjects interleaved with a limit of 3 pairs: a batch per subject, sent when full; the rest sent in the order the batches were opened; a batch's id is the first 16 bytes of SHA-256 over each pair id and a newline, in hex", 3, 256 << 10, two})
	// Multi-byte characters: a limit that counts UTF-16 code units instead
	// of UTF-8 bytes would fit three of these pairs where two fit.
	pad := strings.Repeat("ü🙂", 150)
	var uni []*envelope.Pair
	for i := range 5 {
		uni = append(uni, vectorPair("orders", "GetOrder", i, pad))
	}
	w := envelope.NewBatchWriter(64, envelope.MaxSize)
	for _, p := range uni[:2] {
		if err := w.Add(p); err != nil {
			panic(err)
		}
	}
	out = append(out, c{"the byte limit counts UTF-8 bytes, the batch's head, commas and the longest tail: exactly two of these pairs fit", 64, w.Size(), uni})
	return out
}

// packVectors packs pairs as the publisher does when they wait at once.
func packVectors(t *testing.T, maxPairs, maxBytes int, pairs []*envelope.Pair) (subjects, ids, datas []string) {
	t.Helper()
	type open struct {
		subject string
		w       *envelope.BatchWriter
	}
	var opened []*open
	bySubject := map[string]*open{}
	send := func(o *open) {
		data, id := o.w.Finish()
		subjects, ids, datas = append(subjects, o.subject), append(ids, id), append(datas, string(data))
		delete(bySubject, o.subject)
		for i, x := range opened {
			if x == o {
				opened = append(opened[:i], opened[i+1:]...)
				break
			}
		}
	}
	openFor := func(subject string) *open {
		o := &open{subject, envelope.NewBatchWriter(maxPairs, maxBytes)}
		bySubject[subject] = o
		opened = append(opened, o)
		return o
	}
	for _, p := range pairs {
		o := bySubject[p.Subject()]
		if o == nil {
			o = openFor(p.Subject())
		}
		err := o.w.Add(p)
		if errors.Is(err, envelope.ErrBatchFull) {
			send(o)
			o = openFor(p.Subject())
			err = o.w.Add(p)
		}
		if err != nil {
			t.Fatalf("pair %s: %v", p.ID, err)
		}
		if o.w.Len() >= maxPairs {
			send(o)
		}
	}
	for len(opened) > 0 {
		send(opened[0])
	}
	return subjects, ids, datas
}

// TestBatchVectors holds client-vectors.json's batches to Go's batch
// writer, and decodes every message with the verifier's decoder: the Node
// client's tests produce the same bytes from the same pairs, so a batch the
// Node client sends is one Go reads.
func TestBatchVectors(t *testing.T) {
	cases := batchVectorCases()
	var want []batchVector
	for _, c := range cases {
		v := batchVector{Explanation: c.explanation, MaxPairs: c.maxPairs, MaxBytes: c.maxBytes}
		for _, p := range c.pairs {
			b, err := envelope.AppendPair(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			v.Pairs = append(v.Pairs, string(b))
		}
		subjects, ids, datas := packVectors(t, c.maxPairs, c.maxBytes, c.pairs)
		for i := range subjects {
			v.Messages = append(v.Messages, struct {
				Subject string `json:"subject"`
				ID      string `json:"id"`
				Data    string `json:"data"`
			}{subjects[i], ids[i], datas[i]})
		}
		want = append(want, v)
	}
	if *updateBatchVectors {
		writeBatchVectors(t, want)
	}

	b, err := os.ReadFile("../../testdata/client-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Batches []batchVector `json:"batches"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("client-vectors.json: %v", err)
	}
	if len(file.Batches) != len(want) {
		t.Fatalf("client-vectors.json has %d batch vectors, Go makes %d: run go test ./pkg/migration -run TestBatchVectors -update-batch-vectors", len(file.Batches), len(want))
	}
	sawBatch, sawSingle, sawSplitByBytes := false, false, false
	for i, v := range file.Batches {
		w := want[i]
		got, _ := json.Marshal(v)
		exp, _ := json.Marshal(w)
		if !bytes.Equal(got, exp) {
			t.Fatalf("batch vector %d (%s) is not what Go writes now:\n file %s\n Go   %s", i, w.Explanation, got, exp)
		}
		// Every message decodes, with its pairs in order and its id.
		var pairIDs []string
		for _, raw := range v.Pairs {
			p, err := envelope.Decode([]byte(raw))
			if err != nil {
				t.Fatalf("vector %d: pair %s: %v", i, raw, err)
			}
			pairIDs = append(pairIDs, p.ID)
		}
		var decoded []string
		for _, m := range v.Messages {
			msg, err := envelope.DecodeMessage([]byte(m.Data))
			if err != nil {
				t.Fatalf("vector %d: message %s: %v", i, m.Data, err)
			}
			if msg.ID != m.ID {
				t.Errorf("vector %d: message id %q, its Nats-Msg-Id would be %q", i, msg.ID, m.ID)
			}
			if len(msg.Items) == 1 {
				sawSingle = sawSingle || msg.Version == envelope.Version
			} else {
				sawBatch = true
				if msg.Version != envelope.BatchVersion {
					t.Errorf("vector %d: %d pairs in a version %d message", i, len(msg.Items), msg.Version)
				}
			}
			if len(m.Data) > v.MaxBytes && len(msg.Items) > 1 {
				t.Errorf("vector %d: a batch of %d bytes, the limit is %d", i, len(m.Data), v.MaxBytes)
			}
			if len(msg.Items) > v.MaxPairs {
				t.Errorf("vector %d: a batch of %d pairs, the limit is %d", i, len(msg.Items), v.MaxPairs)
			}
			for _, it := range msg.Items {
				if it.Err != nil {
					t.Fatalf("vector %d: a pair in %s: %v", i, m.ID, it.Err)
				}
				if it.Pair.Subject() != m.Subject {
					t.Errorf("vector %d: pair %s of subject %s in a message on %s", i, it.Pair.ID, it.Pair.Subject(), m.Subject)
				}
				decoded = append(decoded, it.Pair.ID)
			}
		}
		if len(decoded) != len(pairIDs) {
			t.Errorf("vector %d: %d pairs in, %d decoded out", i, len(pairIDs), len(decoded))
		}
		if v.MaxPairs == 64 && len(v.Messages) > 1 {
			sawSplitByBytes = true
		}
	}
	if !sawBatch || !sawSingle || !sawSplitByBytes {
		t.Errorf("the batch vectors must hold a batch (%v), a single pair (%v) and a split by bytes (%v)", sawBatch, sawSingle, sawSplitByBytes)
	}
}

// writeBatchVectors replaces the "batches" member, the file's last, with vs.
func writeBatchVectors(t *testing.T, vs []batchVector) {
	t.Helper()
	const path = "../../testdata/client-vectors.json"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n")
	if i := strings.Index(s, ",\n  \"batches\":"); i >= 0 {
		s = s[:i]
	} else {
		s = strings.TrimSuffix(s, "}")
		s = strings.TrimRight(s, "\n")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(vs); err != nil {
		t.Fatal(err)
	}
	out := s + ",\n  \"batches\": " + strings.TrimRight(buf.String(), "\n") + "\n}\n"
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}
