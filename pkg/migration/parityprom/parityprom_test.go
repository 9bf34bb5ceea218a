package parityprom_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
	"github.com/parityhq/parity/pkg/migration/parityprom"
)

// staticFlags always says the stage it holds.
type staticFlags string

func (s staticFlags) StringValueDetails(_ context.Context, flag, _ string, _ openfeature.EvaluationContext, _ ...openfeature.Option) (openfeature.StringEvaluationDetails, error) {
	return openfeature.StringEvaluationDetails{Value: string(s)}, nil
}

type discard struct{}

func (discard) Publish(*envelope.Pair) bool { return true }

func cfg(op string, stage string) migration.Config[int, int] {
	return migration.Config[int, int]{
		Experiment: "orders", Operation: op, Flags: staticFlags(stage), FlagKey: "stage", Publisher: discard{},
		Old: func(context.Context, int) (int, error) { return 1, nil },
		New: func(context.Context, int) (int, error) { return 1, nil },
	}
}

func TestCollector(t *testing.T) {
	r, err := migration.NewReader(cfg("get", "shadow"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := migration.NewWriter(cfg("put", "freeze"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := r.Read(t.Context(), openfeature.EvaluationContext{}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(t.Context(), openfeature.EvaluationContext{}, 1); !errors.Is(err, migration.ErrWriteFrozen) {
		t.Fatalf("Write: %v", err)
	}

	c, err := parityprom.New(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add(w); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(r); !errors.Is(err, parityprom.ErrDuplicate) {
		t.Errorf("Add of the same source: %v, want ErrDuplicate", err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		`parity_migration_calls_total{experiment="orders",kind="read",operation="get"} 3`,
		`parity_migration_pairs_offered_total{experiment="orders",kind="read",operation="get"} 3`,
		`parity_migration_pairs_published_total{experiment="orders",kind="read",operation="get"} 3`,
		`parity_migration_pairs_pending{experiment="orders",kind="read",operation="get"} 0`,
		`parity_migration_in_flight{experiment="orders",kind="read",operation="get"} 0`,
		`parity_migration_writes_frozen_total{experiment="orders",kind="write",operation="put"} 1`,
		`parity_migration_calls_total{experiment="orders",kind="write",operation="put"} 1`,
		"# TYPE parity_migration_pairs_dropped_total counter",
		"# TYPE parity_migration_in_flight gauge",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("exposition lacks %q:\n%s", want, text.String())
		}
	}
	if got := len(mfs); got != 12 {
		t.Errorf("%d metric families, want 12", got)
	}
}
