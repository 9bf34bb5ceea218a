package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/redact"
	"github.com/parityhq/parity/pkg/segment"
)

// RulesStore is where workers read diff rules, redactions and segment
// definitions. *store.Store satisfies it.
type RulesStore interface {
	AllSegmentConfigs(ctx context.Context) ([]store.SegmentConfig, error)
	SegmentConfig(ctx context.Context, experiment string) (store.SegmentConfig, error)
	// EnsureSegmentConfig stores def as the experiment's definition unless
	// it has one, and returns the one it has.
	EnsureSegmentConfig(ctx context.Context, experiment string, def segment.Definition, author, reason string) (store.SegmentConfig, error)
	AllRules(ctx context.Context) ([]store.Rules, error)
	Rules(ctx context.Context, experiment string) (store.Rules, error)
	AllRedactions(ctx context.Context) ([]store.Redaction, error)
	Redaction(ctx context.Context, experiment string) (store.Redaction, error)
}

// judges holds a compiled differ, a redactor and a segment definition per
// experiment, swapped atomically when they change, so judging never waits
// for a reload.
type judges struct {
	byExp    atomic.Pointer[map[string]*diff.Differ]
	redactor atomic.Pointer[map[string]*redact.Redactor]
	segments atomic.Pointer[map[string]segment.Definition]
	log      *slog.Logger
}

func newJudges(log *slog.Logger) *judges {
	j := &judges{log: log}
	j.byExp.Store(&map[string]*diff.Differ{})
	j.redactor.Store(&map[string]*redact.Redactor{})
	j.segments.Store(&map[string]segment.Definition{})
	return j
}

// segmentsFor returns the experiment's stored segment definition, if this
// worker knows it.
func (j *judges) segmentsFor(experiment string) (segment.Definition, bool) {
	d, ok := (*j.segments.Load())[experiment]
	return d, ok
}

// setSegments records stored segment definitions.
func (j *judges) setSegments(cs ...store.SegmentConfig) {
	if len(cs) == 0 {
		return
	}
	next := maps.Clone(*j.segments.Load())
	for _, c := range cs {
		if old, ok := next[c.Experiment]; ok && !old.Equal(c.Definition) {
			j.log.Info("verifier: segment definition loaded", "experiment", c.Experiment, "version", c.Version,
				"attrs", c.Attrs, "cap", c.Cap)
		}
		next[c.Experiment] = c.Definition
	}
	j.segments.Store(&next)
}

// loadSegments reloads every experiment's segment definition, or, with
// experiment set, that one's.
func (j *judges) loadSegments(ctx context.Context, rs RulesStore, experiment string) error {
	if experiment == "" {
		all, err := rs.AllSegmentConfigs(ctx)
		if err != nil {
			return err
		}
		j.setSegments(all...)
		return nil
	}
	c, err := rs.SegmentConfig(ctx, experiment)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	j.setSegments(c)
	return nil
}

// redactorFor returns the experiment's redactor; nil redacts nothing.
func (j *judges) redactorFor(experiment string) *redact.Redactor {
	return (*j.redactor.Load())[experiment]
}

func compileRedaction(r store.Redaction) (*redact.Redactor, error) {
	var rules []redact.Rule
	if err := json.Unmarshal(r.Rules, &rules); err != nil {
		return nil, fmt.Errorf("verifier: redaction of %s: %w", r.Experiment, err)
	}
	return redact.New(rules, r.Key)
}

// loadRedactions replaces every experiment's redactor, or, with experiment
// set, that one's. A redaction that does not compile (it was validated when
// saved) withholds all sample data of its experiment rather than store it
// unredacted: it fails closed.
func (j *judges) loadRedactions(ctx context.Context, rs RulesStore, experiment string) error {
	var list []store.Redaction
	if experiment == "" {
		all, err := rs.AllRedactions(ctx)
		if err != nil {
			return err
		}
		list = all
	} else {
		r, err := rs.Redaction(ctx, experiment)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		list = []store.Redaction{r}
	}
	next := maps.Clone(*j.redactor.Load())
	for _, r := range list {
		red, err := compileRedaction(r)
		if err != nil {
			j.log.Error("verifier: redaction does not compile; withholding sample values", "experiment", r.Experiment, "err", err)
			red, _ = redact.New([]redact.Rule{{Path: "$", Mode: redact.Mask}}, nil)
		}
		next[r.Experiment] = red
	}
	j.redactor.Store(&next)
	return nil
}

var exact = diff.Exact()

// forExperiment returns the experiment's differ, or exact comparison when it
// has no rules.
func (j *judges) forExperiment(experiment string) *diff.Differ {
	if d, ok := (*j.byExp.Load())[experiment]; ok {
		return d
	}
	return exact
}

// compile turns stored rules into a differ. Rules are validated when saved,
// so an error here means the stored document is damaged: the experiment keeps
// its previous differ.
func compile(r store.Rules) (*diff.Differ, error) {
	var rules diff.Rules
	if err := json.Unmarshal(r.Rules, &rules); err != nil {
		return nil, fmt.Errorf("verifier: rules of %s version %d: %w", r.Experiment, r.Version, err)
	}
	rules.Version = r.Version
	d, err := diff.Compile(rules)
	if err != nil {
		return nil, fmt.Errorf("verifier: rules of %s version %d: %w", r.Experiment, r.Version, err)
	}
	return d, nil
}

// loadAll replaces every experiment's differ with its latest rules, and
// every redactor.
func (j *judges) loadAll(ctx context.Context, rs RulesStore) error {
	if err := j.loadRedactions(ctx, rs, ""); err != nil {
		return err
	}
	if err := j.loadSegments(ctx, rs, ""); err != nil {
		return err
	}
	all, err := rs.AllRules(ctx)
	if err != nil {
		return err
	}
	next := maps.Clone(*j.byExp.Load())
	for _, r := range all {
		d, err := compile(r)
		if err != nil {
			j.log.Error("verifier: keeping previous rules", "experiment", r.Experiment, "err", err)
			continue
		}
		next[r.Experiment] = d
	}
	j.byExp.Store(&next)
	return nil
}

// load replaces one experiment's differ with its latest rules, and its
// redactor.
func (j *judges) load(ctx context.Context, rs RulesStore, experiment string) error {
	if err := j.loadRedactions(ctx, rs, experiment); err != nil {
		return err
	}
	if err := j.loadSegments(ctx, rs, experiment); err != nil {
		return err
	}
	r, err := rs.Rules(ctx, experiment)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	d, err := compile(r)
	if err != nil {
		return err
	}
	next := maps.Clone(*j.byExp.Load())
	next[experiment] = d
	j.byExp.Store(&next)
	j.log.Info("verifier: rules loaded", "experiment", experiment, "version", r.Version)
	return nil
}

// watchRules reloads an experiment's rules when the collector announces a
// change, and every rule set every RulesReload. Every RulesReload it also
// prunes the applied stream sequences older than the stream's MaxAge plus an
// hour: a message older than that is gone from the stream and cannot be
// redelivered. The returned function stops both.
func (w *Worker) watchRules(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	changed := make(chan string, 64)
	sub, err := w.js.Conn().Subscribe(natsnames.RulesChangedSubject, func(m *nats.Msg) {
		select {
		case changed <- string(m.Data):
		default: // a burst of notices: the periodic reload catches up
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("verifier: subscribe to rule changes: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(w.opts.RulesReload)
		defer tick.Stop()
		for {
			var err error
			select {
			case <-ctx.Done():
				return
			case exp := <-changed:
				err = w.rules.load(ctx, w.store, exp)
			case <-tick.C:
				err = w.rules.loadAll(ctx, w.store)
				if _, perr := w.store.PruneApplied(ctx, time.Now().Add(-w.opts.Stream.MaxAge-time.Hour)); perr != nil {
					err = errors.Join(err, perr)
				}
			}
			if err != nil && ctx.Err() == nil {
				w.log.Warn("verifier: reload rules", "err", err)
			}
		}
	}()
	return func() { _ = sub.Unsubscribe(); cancel(); <-done }, nil
}
