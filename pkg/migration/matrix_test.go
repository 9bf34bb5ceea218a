package migration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/migration"
	"github.com/parityhq/parity/pkg/publish"
)

// rec is the result both paths return; Path says which one produced it.
type rec struct {
	Path string `json:"path"`
	ID   int    `json:"id"`
}

// behaviour is what one path does in a case.
type behaviour int

const (
	succeeds behaviour = iota
	fails
	panics
)

var (
	errOld = errors.New("old: no such row")
	errNew = errors.New("new: no such row")
)

// path is a test implementation of one side that records its calls.
type path struct {
	name string
	err  error
	do   behaviour
	log  *callLog
}

type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

func (l *callLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (p path) fn(_ context.Context, id int) (rec, error) {
	p.log.add(p.name)
	switch p.do {
	case fails:
		// A value alongside the error: the caller must get both unchanged.
		return rec{Path: p.name + "-partial", ID: id}, p.err
	case panics:
		panic(p.name + " exploded")
	}
	return rec{Path: p.name, ID: id}, nil
}

// wantObs is what a side's observation must say for behaviour b.
func wantObs(t *testing.T, name string, b behaviour, id int) envelope.Observation {
	switch b {
	case fails:
		return envelope.Observation{Status: envelope.StatusError, Error: name + ": no such row"}
	case panics:
		return envelope.Observation{Status: envelope.StatusPanic, Error: "panic: " + name + " exploded"}
	}
	v, err := json.Marshal(rec{Path: name, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return envelope.Observation{Status: envelope.StatusOK, Value: v}
}

var skipped = envelope.Observation{Status: envelope.StatusSkipped, Error: "migration: not attempted because the authoritative write failed"}

var failureCases = []struct {
	name     string
	old, new behaviour
}{
	{"none", succeeds, succeeds},
	{"old fails", fails, succeeds},
	{"new fails", succeeds, fails},
	{"both fail", fails, fails},
	{"old panics", panics, succeeds},
	{"new panics", succeeds, panics},
}

// readPlan is the DESIGN table for reads: who serves, and whether the other
// path runs and a pair is published.
func readPlan(s envelope.Stage) (authoritative string, compared bool) {
	switch s {
	case envelope.StageShadow:
		return "old", true
	case envelope.StageLive:
		return "new", true
	case envelope.StageRampDown, envelope.StageComplete:
		return "new", false
	}
	return "old", false // off, freeze, dualwrite
}

// writePlan is the DESIGN table for writes: the order of the paths (the
// first is authoritative); nil means refused.
func writePlan(s envelope.Stage) []string {
	switch s {
	case envelope.StageOff:
		return []string{"old"}
	case envelope.StageDualWrite, envelope.StageShadow:
		return []string{"old", "new"}
	case envelope.StageLive, envelope.StageRampDown:
		return []string{"new", "old"}
	case envelope.StageComplete:
		return []string{"new"}
	}
	return nil // freeze
}

// TestMatrix runs every stage × read/write × failure side through the
// in-memory OpenFeature provider, the real publisher and an embedded
// JetStream, and checks both what the caller got and what landed on the
// stream.
func TestMatrix(t *testing.T) {
	env := newNATSEnv(t, publish.Options{})
	flags := newFlags(t)
	const experiment = "matrix"
	n := 0
	for _, kind := range []envelope.Kind{envelope.KindRead, envelope.KindWrite} {
		for _, stage := range envelope.Stages {
			for _, fc := range failureCases {
				n++
				id := n
				operation := fmt.Sprintf("%s-%s-%d", kind, stage, id)
				t.Run(fmt.Sprintf("%s/%s/%s", kind, stage, fc.name), func(t *testing.T) {
					log := &callLog{}
					paths := map[string]path{
						"old": {name: "old", err: errOld, do: fc.old, log: log},
						"new": {name: "new", err: errNew, do: fc.new, log: log},
					}
					cfg := migration.Config[int, rec]{
						Experiment: experiment, Operation: operation,
						Flags: flags, FlagKey: flagKey, Publisher: env.pub,
						Old: paths["old"].fn, New: paths["new"].fn,
						Compare: func(a, b rec) bool { return a.ID == b.ID },
					}
					ec := ecFor(fmt.Sprintf("user-%d", id), stage, map[string]any{"country": "IN"})
					ctx := t.Context()

					var (
						m        waiter
						got      rec
						err      error
						panicked any
						want     []string // calls, in order
						wantRes  rec
						wantErr  error
						wantPan  any
						wantPair *envelope.Pair
						panicsN  uint64
					)
					outcome := func(name string) {
						p := paths[name]
						switch p.do {
						case succeeds:
							wantRes = rec{Path: name, ID: id}
						case fails:
							wantRes, wantErr = rec{Path: name + "-partial", ID: id}, p.err
						case panics:
							wantPan = name + " exploded"
						}
					}
					pair := func() *envelope.Pair {
						return &envelope.Pair{
							Version: envelope.Version, Experiment: experiment, Operation: operation,
							Kind: kind, Stage: stage,
							User: envelope.User{Key: fmt.Sprintf("user-%d", id), Attrs: map[string]string{"country": "IN", stageAttr: string(stage)}},
							Flag: &envelope.Flag{Key: flagKey, Variant: string(stage), Reason: "TARGETING_MATCH"},
						}
					}

					called := time.Now()
					if kind == envelope.KindRead {
						r, nerr := migration.NewReader(cfg)
						if nerr != nil {
							t.Fatal(nerr)
						}
						m = r
						got, err, panicked = capture(func() (rec, error) { return r.Read(ctx, ec, id) })
						auth, compared := readPlan(stage)
						outcome(auth)
						want = []string{auth}
						if compared {
							want = []string{"new", "old"} // concurrently: compared as a set
							wantPair = pair()
							wantPair.Control = wantObs(t, "old", fc.old, id)
							wantPair.Candidate = wantObs(t, "new", fc.new, id)
							if fc.old == panics {
								panicsN++
							}
							if fc.new == panics {
								panicsN++
							}
						}
					} else {
						w, nerr := migration.NewWriter(cfg)
						if nerr != nil {
							t.Fatal(nerr)
						}
						m = w
						got, err, panicked = capture(func() (rec, error) { return w.Write(ctx, ec, id) })
						order := writePlan(stage)
						switch len(order) {
						case 0:
							wantErr = migration.ErrWriteFrozen
						case 1:
							outcome(order[0])
							want = order
						case 2:
							outcome(order[0])
							first, second := paths[order[0]], paths[order[1]]
							want = order[:1]
							obs := map[string]envelope.Observation{first.name: wantObs(t, first.name, first.do, id)}
							if first.do == panics {
								panicsN++
							}
							if first.do == succeeds {
								want = order
								obs[second.name] = wantObs(t, second.name, second.do, id)
								if second.do == panics {
									panicsN++
								}
							} else {
								obs[second.name] = skipped
							}
							wantPair = pair()
							wantPair.Control, wantPair.Candidate = obs["old"], obs["new"]
						}
					}
					if wantPair != nil && wantPair.Control.Status == envelope.StatusOK && wantPair.Candidate.Status == envelope.StatusOK {
						wantPair.ClientVerdict = "match"
					}

					// What the caller got: exactly the authoritative result.
					if panicked != wantPan {
						t.Errorf("panic = %v, want %v", panicked, wantPan)
					}
					if wantPan == nil {
						if got != wantRes {
							t.Errorf("result = %+v, want %+v", got, wantRes)
						}
						if kind == envelope.KindWrite && stage == envelope.StageFreeze {
							if !errors.Is(err, migration.ErrWriteFrozen) {
								t.Errorf("error = %v, want ErrWriteFrozen", err)
							}
						} else if err != wantErr {
							t.Errorf("error = %v, want exactly %v", err, wantErr)
						}
					}

					// What landed on the stream.
					env.settle(m)
					pairs := env.pairs(experiment, operation)
					if wantPair == nil {
						if len(pairs) != 0 {
							t.Fatalf("%d pairs published in stage %s, want none: %+v", len(pairs), stage, pairs[0])
						}
					} else {
						if len(pairs) != 1 {
							t.Fatalf("%d pairs published, want 1", len(pairs))
						}
						p := pairs[0]
						if p.ID == "" || p.Time.Before(called.Truncate(time.Millisecond)) || p.Time.After(time.Now()) || p.Control.DurationNS < 0 || p.Candidate.DurationNS < 0 {
							t.Errorf("id %q, time %v, durations %d %d", p.ID, p.Time, p.Control.DurationNS, p.Candidate.DurationNS)
						}
						ignore := cmpopts.IgnoreFields(envelope.Pair{}, "ID", "Time")
						ignoreDur := cmpopts.IgnoreFields(envelope.Observation{}, "DurationNS")
						if diff := cmp.Diff(wantPair, p, ignore, ignoreDur, cmpopts.EquateEmpty()); diff != "" {
							t.Errorf("published pair (-want +got):\n%s", diff)
						}
					}

					// Which paths ran, in which order.
					calls := log.get()
					if kind == envelope.KindRead {
						slices.Sort(calls)
						slices.Sort(want)
					}
					if !slices.Equal(calls, want) {
						t.Errorf("calls = %v, want %v", calls, want)
					}

					// The counters.
					s := m.Stats()
					wantStats := migration.Stats{Experiment: experiment, Operation: operation, Kind: kind, Calls: 1, Panics: panicsN}
					if wantPair != nil {
						wantStats.Offered, wantStats.Published = 1, 1
					}
					if kind == envelope.KindWrite && stage == envelope.StageFreeze {
						wantStats.Frozen = 1
					}
					if diff := cmp.Diff(wantStats, s); diff != "" {
						t.Errorf("stats (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}
