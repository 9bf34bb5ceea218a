package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parityhq/parity/internal/store"
)

func saveRules(t *testing.T, s *store.Store, exp, doc, author, reason string) store.Rules {
	t.Helper()
	r, err := s.SaveRules(t.Context(), exp, json.RawMessage(doc), author, reason)
	if err != nil {
		t.Fatalf("SaveRules(%q): %v", exp, err)
	}
	return r
}

// docVersion returns the "version" member of a rules document.
func docVersion(t *testing.T, doc json.RawMessage) int64 {
	t.Helper()
	var v struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("rules %s: %v", doc, err)
	}
	return v.Version
}

func TestRulesVersionsAndHistory(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()

	if _, err := s.Rules(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Rules before any save = %v, want ErrNotFound", err)
	}
	if h, err := s.RulesHistory(ctx, "x", 0); err != nil || h == nil || len(h) != 0 {
		t.Errorf("RulesHistory before any save = %#v, %v; want an empty slice", h, err)
	}

	before := time.Now().Add(-time.Minute)
	docs := []string{
		`{"default":{"ignore":["**.etag"]}}`,
		`{"version":99,"default":{"ignore":["**.etag","meta.**"]}}`, // the store's version wins
		`{"default":{}, "operations":{"get":{"ignore":["a"]}}}`,
	}
	var saved []store.Rules
	for i, doc := range docs {
		r := saveRules(t, s, "x", doc, fmt.Sprintf("author%d", i+1), fmt.Sprintf("reason %d", i+1))
		if r.Experiment != "x" || r.Version != int64(i+1) || r.Author != fmt.Sprintf("author%d", i+1) ||
			r.Reason != fmt.Sprintf("reason %d", i+1) {
			t.Errorf("save #%d = %+v", i+1, r)
		}
		if v := docVersion(t, r.Rules); v != r.Version {
			t.Errorf("save #%d: document version %d, want %d", i+1, v, r.Version)
		}
		if r.CreatedAt.Before(before) || r.CreatedAt.Location() != time.UTC {
			t.Errorf("save #%d: CreatedAt %v", i+1, r.CreatedAt)
		}
		saved = append(saved, r)
	}
	// The document keeps its meaning, with version added.
	var got, want map[string]any
	_ = json.Unmarshal(saved[0].Rules, &got)
	_ = json.Unmarshal([]byte(`{"version":1,"default":{"ignore":["**.etag"]}}`), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored document (-want +got):\n%s", diff)
	}

	latest, err := s.Rules(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(saved[2], latest); diff != "" {
		t.Errorf("Rules = latest save? (-save +Rules):\n%s", diff)
	}
	history, err := s.RulesHistory(ctx, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantHistory := slices.Clone(saved)
	slices.Reverse(wantHistory)
	if diff := cmp.Diff(wantHistory, history); diff != "" {
		t.Errorf("RulesHistory, newest first (-want +got):\n%s", diff)
	}
	if h, err := s.RulesHistory(ctx, "x", 2); err != nil || len(h) != 2 || h[0].Version != 3 || h[1].Version != 2 {
		t.Errorf("RulesHistory(limit 2) = %+v, %v", h, err)
	}

	// Rules alone do not make an experiment.
	exps, err := s.Experiments(ctx)
	if err != nil || len(exps) != 0 {
		t.Errorf("Experiments with rules but no pairs = %+v, %v; want none", exps, err)
	}
	// Pairs that arrive later do not disturb the rules.
	apply(t, s, &store.Batch{Counts: []store.Count{count("x", "get", "a", 0, 1, 0)}})
	if r := saveRules(t, s, "x", `{}`, "", ""); r.Version != 4 {
		t.Errorf("save after Apply: version %d, want 4", r.Version)
	}
}

func TestSaveRulesRejectsNonObjects(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	for _, doc := range []string{``, `null`, `[]`, `"rules"`, `{"default":`, `not json`} {
		if r, err := s.SaveRules(ctx, "x", json.RawMessage(doc), "a", "r"); err == nil {
			t.Errorf("SaveRules(%q) = %+v, want an error", doc, r)
		}
	}
	if h, err := s.RulesHistory(ctx, "x", 0); err != nil || len(h) != 0 {
		t.Errorf("RulesHistory after refused saves = %+v, %v", h, err)
	}
	// What jsonb and text refuse is repaired, as everywhere in the store.
	r := saveRules(t, s, "x", `{"default":{"ignore":["a\u0000b"]}}`, "nul\x00author", "bad\xffreason")
	if r.Author != "nul\uFFFDauthor" || r.Reason != "bad\uFFFDreason" {
		t.Errorf("strings not repaired: %q %q", r.Author, r.Reason)
	}
}

func TestSaveRulesConcurrently(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{MaxConns: 8})
	const savers = 8
	var wg sync.WaitGroup
	versions := make([]int64, savers)
	errs := make([]error, savers)
	for i := range savers {
		wg.Go(func() {
			r, err := s.SaveRules(t.Context(), "x", json.RawMessage(fmt.Sprintf(`{"saver":%d}`, i)), fmt.Sprint(i), "race")
			versions[i], errs[i] = r.Version, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("SaveRules #%d: %v", i, err)
		}
	}
	slices.Sort(versions)
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(versions, want) {
		t.Errorf("versions %v, want %v: distinct and consecutive", versions, want)
	}
	history, err := s.RulesHistory(t.Context(), "x", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != savers {
		t.Fatalf("history has %d versions, want %d", len(history), savers)
	}
	for i, r := range history {
		if r.Version != int64(savers-i) || docVersion(t, r.Rules) != r.Version {
			t.Errorf("history[%d]: version %d, document version %d; want %d", i, r.Version, docVersion(t, r.Rules), savers-i)
		}
	}
}

func TestAllRulesLatestPerExperiment(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	ctx := t.Context()
	if all, err := s.AllRules(ctx); err != nil || all == nil || len(all) != 0 {
		t.Errorf("AllRules with none = %#v, %v; want an empty slice", all, err)
	}
	saveRules(t, s, "b", `{"n":1}`, "", "")
	saveRules(t, s, "a", `{"n":1}`, "", "")
	b2 := saveRules(t, s, "b", `{"n":2}`, "", "")
	saveRules(t, s, "a", `{"n":2}`, "", "")
	a3 := saveRules(t, s, "a", `{"n":3}`, "", "")
	c1 := saveRules(t, s, "c", `{"n":1}`, "", "")
	all, err := s.AllRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Rules{a3, b2, c1}, all); diff != "" {
		t.Errorf("AllRules (-want +got):\n%s", diff)
	}
}
