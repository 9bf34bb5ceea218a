package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/segment"
)

// TestSegmentConfigVersions: definitions are versioned per experiment like
// rules; an invalid one is refused naming the field.
func TestSegmentConfigVersions(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	if _, err := s.SegmentConfig(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SegmentConfig of a new experiment: %v, want ErrNotFound", err)
	}
	for i, def := range []segment.Definition{{Attrs: []string{"country"}, Cap: 10}, {Attrs: []string{"plan", "country"}, Cap: 3}, {Attrs: []string{}, Cap: 1}} {
		c, err := s.SaveSegmentConfig(ctx, "x", def, "op", fmt.Sprint("change ", i))
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != int64(i+1) || !c.Equal(def) || c.Author != "op" {
			t.Errorf("save %d: %+v", i, c)
		}
	}
	cur, err := s.SegmentConfig(ctx, "x")
	if err != nil || cur.Version != 3 || len(cur.Attrs) != 0 || cur.Cap != 1 {
		t.Errorf("current: %+v, %v; want version 3, no attributes, cap 1", cur, err)
	}
	hist, err := s.SegmentConfigHistory(ctx, "x", 0)
	if err != nil || len(hist) != 3 || hist[0].Version != 3 || hist[2].Reason != "change 0" {
		t.Errorf("history: %+v, %v", hist, err)
	}
	for _, bad := range []segment.Definition{{Attrs: []string{"a,b"}, Cap: 5}, {Attrs: []string{"a"}, Cap: 0}, {Attrs: []string{"a", "a"}, Cap: 5}} {
		if _, err := s.SaveSegmentConfig(ctx, "x", bad, "op", "bad"); !errors.Is(err, segment.ErrInvalid) {
			t.Errorf("save %+v: %v, want ErrInvalid", bad, err)
		}
	}
}

// TestEnsureSegmentConfigOneWinner: verifiers with different defaults race to
// store a new experiment's definition; one is stored and every one of them
// gets that one.
func TestEnsureSegmentConfigOneWinner(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	const n = 8
	got := make([]store.SegmentConfig, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			def := segment.Definition{Attrs: []string{fmt.Sprint("attr", i)}, Cap: 10 + i}
			got[i], errs[i] = s.EnsureSegmentConfig(t.Context(), "race", def, "verifier", "first pair")
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if diff := cmp.Diff(got[0], got[i]); diff != "" {
			t.Errorf("caller %d got another definition (-first +this):\n%s", i, diff)
		}
	}
	if hist, _ := s.SegmentConfigHistory(t.Context(), "race", 0); len(hist) != 1 || got[0].Version != 1 {
		t.Errorf("history %+v, want the one version all callers got", hist)
	}
	// Once there is one, Ensure returns it whatever it is given.
	c, err := s.EnsureSegmentConfig(t.Context(), "race", segment.Definition{Attrs: []string{"other"}, Cap: 99}, "verifier", "later")
	if err != nil || !c.Equal(got[0].Definition) {
		t.Errorf("a later Ensure: %+v, %v; want %+v", c, err, got[0])
	}
}

// TestApplyFoldsUnderTheStoredCap: Apply admits segments under the cap of
// the experiment's stored definition, not the store's default; adopting
// records the flags in force for experiments counted without one.
func TestApplyFoldsUnderTheStoredCap(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{SegmentCap: 100})
	ctx := t.Context()
	if _, err := s.SaveSegmentConfig(ctx, "small", segment.Definition{Attrs: []string{"seg"}, Cap: 1}, "op", "one segment"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, &store.Batch{Counts: []store.Count{count("small", "get", "a", 0, 1, 0), count("small", "get", "b", 0, 2, 0),
		count("wide", "get", "a", 0, 1, 0), count("wide", "get", "b", 0, 2, 0)}})
	if got, want := pairsBySegment(segments(t, s, "small", store.SegmentQuery{})), map[string][2]int64{"a": {1, 0}, store.OtherSegment: {2, 0}}; !cmp.Equal(got, want) {
		t.Errorf("small (cap 1): %v, want %v", got, want)
	}
	if got := pairsBySegment(segments(t, s, "wide", store.SegmentQuery{})); len(got) != 2 || got["b"] != [2]int64{2, 0} {
		t.Errorf("wide (no definition: the store's cap): %v", got)
	}

	def := segment.Definition{Attrs: []string{"country", "plan"}, Cap: 100}
	n, err := s.AdoptSegmentConfigs(ctx, def, "verifier", "flags in force")
	if err != nil || n != 1 {
		t.Fatalf("adopt: %d, %v; want 1 (wide; small has one)", n, err)
	}
	if c, err := s.SegmentConfig(ctx, "wide"); err != nil || !c.Equal(def) || c.Version != 1 {
		t.Errorf("wide after adopting: %+v, %v", c, err)
	}
	if c, _ := s.SegmentConfig(ctx, "small"); c.Cap != 1 {
		t.Errorf("adopting changed small's definition: %+v", c)
	}
	if n, err := s.AdoptSegmentConfigs(ctx, def, "verifier", "again"); err != nil || n != 0 {
		t.Errorf("adopting again: %d, %v; want 0", n, err)
	}
}
