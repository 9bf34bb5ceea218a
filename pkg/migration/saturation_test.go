package migration_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
	"github.com/parityhq/parity/pkg/publish"
)

// TestSaturationAccounting is B5: with the real publisher saturated (a queue
// of one pair, one unacknowledged publish at a time), calls keep returning
// without waiting for it, and every call offered is accounted for exactly as published,
// dropped or sampled out.
func TestSaturationAccounting(t *testing.T) {
	env := newNATSEnv(t, publish.Options{QueueSize: 1, MaxPending: 1})
	flags := newFlags(t)
	rcfg := readConfig(flags, env.pub)
	wcfg := readConfig(flags, env.pub)
	wcfg.Operation = "put"
	r := mustReader(t, rcfg, migration.Sampling(3))
	w := mustWriter(t, wcfg, migration.Sampling(3))

	const workers, perWorker = 4, 600
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("user-%d", (g*perWorker+i)%97)
				rstage, wstage := envelope.StageShadow, envelope.StageDualWrite
				if i%2 == 1 {
					rstage, wstage = envelope.StageLive, envelope.StageRampDown
				}
				_, rerr := r.Read(t.Context(), ecFor(key, rstage, nil), i)
				_, werr := w.Write(t.Context(), ecFor(key, wstage, nil), i)
				if rerr != nil || werr != nil {
					t.Errorf("Read: %v, Write: %v", rerr, werr)
					return
				}
			}
		})
	}
	wg.Wait()
	env.settle(r)
	env.settle(w)

	const offered = workers * perWorker
	var published, dropped uint64
	for _, s := range []migration.Stats{r.Stats(), w.Stats()} {
		t.Logf("%s: %+v", s.Kind, s)
		if s.Calls != offered || s.Offered != offered {
			t.Errorf("%s: %d calls, %d offered, want %d", s.Kind, s.Calls, s.Offered, offered)
		}
		if got := s.Published + s.Dropped + s.SampledOut; got != s.Offered || s.Pending != 0 {
			t.Errorf("%s: published %d + dropped %d + sampled out %d = %d, want offered %d exactly (pending %d)",
				s.Kind, s.Published, s.Dropped, s.SampledOut, got, s.Offered, s.Pending)
		}
		if s.SampledOut == 0 || s.SampledOut == offered {
			t.Errorf("%s: %d sampled out: the sample does not split the users", s.Kind, s.SampledOut)
		}
		published += s.Published
		dropped += s.Dropped
	}
	if dropped == 0 {
		t.Errorf("nothing dropped: the publisher was not saturated, so the test proves nothing")
	}
	// The two sets of books agree: what the migrations counted as published
	// the publisher counted as enqueued, and so on.
	ps := env.pub.Stats()
	t.Logf("publisher: %+v", ps)
	if ps.Enqueued != published || ps.Dropped != dropped {
		t.Errorf("publisher enqueued %d dropped %d; migrations counted published %d dropped %d", ps.Enqueued, ps.Dropped, published, dropped)
	}
	if ps.Failed != 0 || ps.Published != ps.Enqueued {
		t.Errorf("publisher: %+v, want every enqueued pair acknowledged", ps)
	}
	got := len(env.pairs("orders", "get")) + len(env.pairs("orders", "put"))
	if uint64(got) != published {
		t.Errorf("%d pairs on the stream, want %d", got, published)
	}
	// That calls never wait for the publisher is shown by the counts above
	// (a full queue drops and counts; it does not wait) and by the hook's
	// latency in benchmark B4, not by timing calls here.
}
