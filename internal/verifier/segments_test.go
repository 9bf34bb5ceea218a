package verifier

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/segment"
)

// storedSegments returns the experiment's segments as stored.
func storedSegments(t *testing.T, st *store.Store) map[string]int64 {
	t.Helper()
	rows, err := st.Segments(context.Background(), "exp", store.SegmentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Segment] = r.Pairs
	}
	return out
}

// TestVerifiersWithDifferentFlagsAgree: two verifiers started with different
// --segment-attrs and --segment-cap split one experiment the same way: the
// first to see it stores its definition, and the other uses the stored one,
// not its flags. A definition saved later reaches both with the notice.
func TestVerifiersWithDifferentFlagsAgree(t *testing.T) {
	r := newRig(t)
	_, stop1, done1 := r.worker(t, r.st, Options{SegmentAttrs: []string{"country"}, SegmentCap: 7})
	r.publish(t, 300)
	r.exact(t)
	stop1()
	done1 <- <-done1 // stopped; the cleanup reads it again
	if got := storedSegments(t, r.st); len(got) != 1 || got["country=IN"] != 300 {
		t.Fatalf("after the first verifier: segments %v, want country=IN only", got)
	}

	// The second verifier's flags would split by plan; the stored
	// definition splits by country.
	w2, _, _ := r.worker(t, r.st, Options{SegmentAttrs: []string{"plan"}, SegmentCap: 3})
	r.publish(t, 300)
	r.exact(t)
	if got := storedSegments(t, r.st); len(got) != 1 || got["country=IN"] != 600 {
		t.Errorf("after the second verifier: segments %v, want country=IN only", got)
	}
	if w2.Stats().Judged != 300 {
		t.Errorf("the second verifier judged %d pairs, want 300", w2.Stats().Judged)
	}
	c, err := r.st.SegmentConfig(context.Background(), "exp")
	if err != nil || c.Version != 1 || !c.Equal(segment.Definition{Attrs: []string{"country"}, Cap: 7}) ||
		!strings.Contains(c.Reason, "--segment-attrs=country --segment-cap=7") {
		t.Errorf("stored definition %+v, %v; want the first verifier's, saying where it came from", c, err)
	}

	// An operator's change reaches the running verifier with the notice.
	if _, err := r.st.SaveSegmentConfig(context.Background(), "exp", segment.Definition{Attrs: []string{"plan", "country"}, Cap: 5}, "op", "by plan too"); err != nil {
		t.Fatal(err)
	}
	nc := testutil.Connect(t, r.ns)
	if err := nc.Publish(natsnames.RulesChangedSubject, []byte("exp")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() string {
		if d, ok := w2.rules.segmentsFor("exp"); !ok || d.Cap != 5 {
			return fmt.Sprintf("the verifier holds %+v", d)
		}
		return ""
	})
	r.publish(t, 30)
	r.exact(t)
	if got := storedSegments(t, r.st); got["plan=(none),country=IN"] != 30 || got["country=IN"] != 600 {
		t.Errorf("after the change: segments %v, want the new pairs in plan=(none),country=IN", got)
	}
}
