package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
)

// TestExperimentAndOperationCaps: experiments past the experiment cap are
// counted in experiment "other" and operations past an experiment's
// operation cap in its operation "other", for counts and samples alike;
// nothing is lost, admitted names stay admitted, and the folds are counted.
func TestExperimentAndOperationCaps(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{ExperimentCap: 2, OperationCap: 2})
	ctx := t.Context()
	apply(t, s, &store.Batch{Counts: []store.Count{
		count("a", "get", "s", 0, 1, 0), count("a", "put", "s", 0, 2, 0), count("a", "del", "s", 0, 4, 1),
		count("b", "get", "s", 0, 8, 0), count("c", "get", "s", 0, 16, 2), count("d", "list", "s", 0, 32, 0),
	}, Samples: []store.Sample{sample("c", "get", "s", t0), sample("a", "del", "s", t0)}})

	exps, err := s.Experiments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, e := range exps {
		got[e.Name] = e.Pairs
	}
	if want := map[string]int64{"a": 7, "b": 8, store.OtherExperiment: 48}; !cmp.Equal(got, want) {
		t.Errorf("experiments %v, want %v (c and d folded into other)", got, want)
	}
	// Operations are admitted in name order: del and get; put folds.
	if ops, err := s.Operations(ctx, "a"); err != nil || !cmp.Equal(ops, []string{"del", "get", store.OtherOperation}) {
		t.Errorf("operations of a: %v, %v; want del, get, other", ops, err)
	}
	if ops, _ := s.Operations(ctx, store.OtherExperiment); !cmp.Equal(ops, []string{"get", "list"}) {
		t.Errorf("operations of other: %v, want get and list", ops)
	}
	if smp, err := s.Samples(ctx, store.OtherExperiment, store.SampleQuery{}); err != nil || len(smp) != 1 || smp[0].Operation != "get" {
		t.Errorf("samples of other: %+v, %v; want c's", smp, err)
	}
	if f := s.Folded(); f.ExperimentPairs != 48 || f.OperationPairs != 2 {
		t.Errorf("Folded() = %+v, want 48 experiment pairs (c, d) and 2 operation pairs (a put)", f)
	}

	// Admitted names stay admitted; a new one still folds.
	apply(t, s, &store.Batch{Counts: []store.Count{count("b", "get", "s", 1, 1, 0), count("e", "get", "s", 1, 1, 0)}})
	exps, _ = s.Experiments(ctx)
	got = map[string]int64{}
	for _, e := range exps {
		got[e.Name] = e.Pairs
	}
	if want := map[string]int64{"a": 7, "b": 9, store.OtherExperiment: 49}; !cmp.Equal(got, want) {
		t.Errorf("after a second batch: %v, want %v", got, want)
	}
}

// TestExperimentCapAcrossStores: verifiers with their own stores (and name
// caches) on one database never admit more experiments than the cap
// together.
func TestExperimentCapAcrossStores(t *testing.T) {
	t.Parallel()
	url := testutil.FreshDatabase(t)
	const stores, perStore, limit = 4, 10, 5
	var all []*store.Store
	for range stores {
		s, err := store.Open(context.Background(), url, store.Options{ExperimentCap: limit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		all = append(all, s)
	}
	var wg sync.WaitGroup
	errs := make(chan error, stores*perStore)
	for i, s := range all {
		wg.Go(func() {
			for j := range perStore {
				b := &store.Batch{Counts: []store.Count{count(fmt.Sprintf("e%d-%d", i, j), "get", "s", 0, 1, 0)}}
				if err := s.Apply(context.Background(), b); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	exps, err := all[0].Experiments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var named, pairs int64
	for _, e := range exps {
		pairs += e.Pairs
		if e.Name != store.OtherExperiment {
			named++
		}
	}
	if named != limit || pairs != stores*perStore {
		t.Errorf("%d named experiments holding, with other, %d pairs; want %d and %d", named, pairs, limit, stores*perStore)
	}
	var folded uint64
	for _, s := range all {
		folded += s.Folded().ExperimentPairs
	}
	if folded != stores*perStore-limit {
		t.Errorf("stores folded %d pairs, want %d", folded, stores*perStore-limit)
	}
}
