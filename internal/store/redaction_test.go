package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

func TestRedactionKeptKeyAndPrune(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, testutil.FreshDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Redaction(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Redaction of none = %v, want ErrNotFound", err)
	}
	first, err := s.SaveRedaction(ctx, "x", json.RawMessage(`[{"path":"user.email","mode":"mask"}]`), "op")
	if err != nil || len(first.Key) != 32 {
		t.Fatalf("SaveRedaction: %+v, %v", first, err)
	}
	second, err := s.SaveRedaction(ctx, "x", json.RawMessage(`[{"path":"card","mode":"hash"}]`), "op")
	if err != nil || !bytes.Equal(first.Key, second.Key) {
		t.Fatalf("the hashing key must survive edits: %x vs %x (%v)", first.Key, second.Key, err)
	}
	all, err := s.AllRedactions(ctx)
	if err != nil || len(all) != 1 || string(all[0].Rules) != `[{"mode": "hash", "path": "card"}]` {
		t.Fatalf("AllRedactions = %+v, %v", all, err)
	}

	old, recent := time.Now().Add(-48*time.Hour).UTC(), time.Now().UTC()
	err = s.Apply(ctx, &store.Batch{
		Counts: []store.Count{{Experiment: "x", Operation: "op", Segment: "all", Minute: recent.Truncate(time.Minute), Counters: report.Counters{Pairs: 2, Divergent: 2}, LastSeen: recent}},
		Samples: []store.Sample{
			{PairID: "old", Experiment: "x", Operation: "op", Segment: "all", Time: old, Control: json.RawMessage(`{}`), Candidate: json.RawMessage(`{}`)},
			{PairID: "new", Experiment: "x", Operation: "op", Segment: "all", Time: recent, Control: json.RawMessage(`{}`), Candidate: json.RawMessage(`{}`)},
		},
		DeadLetters: []store.DeadLetter{{Source: "nats", Reason: "r", At: old}, {Source: "nats", Reason: "r", At: recent}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns, nd, err := s.Prune(ctx, time.Now().Add(-24*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil || ns != 1 || nd != 1 {
		t.Fatalf("Prune = %d samples, %d dead letters, %v; want 1 and 1", ns, nd, err)
	}
	left, _ := s.Samples(ctx, "x", store.SampleQuery{})
	if len(left) != 1 || left[0].PairID != "new" {
		t.Errorf("samples left %+v, want only the recent one", left)
	}
}
