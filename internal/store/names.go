package store

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/pkg/segment"
)

// OtherExperiment and OtherOperation are the experiment and the operation
// that names past [Options.ExperimentCap] and [Options.OperationCap] fold
// into.
const (
	OtherExperiment = "other"
	OtherOperation  = "other"
)

// FoldStats count what [Store.Apply] folded into [OtherExperiment] and
// [OtherOperation] since the store was opened: the pairs (A/A pairs
// included) of the counts it folded.
type FoldStats struct {
	ExperimentPairs uint64 // pairs of experiments past the experiment cap
	OperationPairs  uint64 // pairs of operations past their experiment's operation cap
}

// Folded returns what Apply folded since the store was opened.
func (s *Store) Folded() FoldStats {
	return FoldStats{ExperimentPairs: s.names.expPairs.Load(), OperationPairs: s.names.opPairs.Load()}
}

// namesLockSpace is the key of the advisory lock Apply takes, only when a
// batch brings names it has not admitted before, to admit experiments and
// operations one batch at a time, so concurrent verifiers never admit more
// than the caps.
const namesLockSpace = 0x6e616d65 // "name"

// knownNames remembers the experiments and operations admitted (committed),
// so a batch of known names costs no round trip. Names are never
// un-admitted, and the caps bound the set.
type knownNames struct {
	mu       sync.RWMutex
	exps     map[string]struct{}
	ops      map[[2]string]struct{}
	expPairs atomic.Uint64
	opPairs  atomic.Uint64
}

func (k *knownNames) has(exps []string, ops [][2]string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, e := range exps {
		if _, ok := k.exps[e]; !ok {
			return false
		}
	}
	for _, o := range ops {
		if _, ok := k.ops[o]; !ok {
			return false
		}
	}
	return true
}

func (k *knownNames) add(exps []string, ops [][2]string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.exps == nil {
		k.exps, k.ops = map[string]struct{}{}, map[[2]string]struct{}{}
	}
	for _, e := range exps {
		k.exps[e] = struct{}{}
	}
	for _, o := range ops {
		k.ops[o] = struct{}{}
	}
}

// nameFold is how a batch's names are rewritten: experiments past the cap
// to OtherExperiment, then operations past their experiment's cap to
// OtherOperation. Both keys are the names as the batch has them.
type nameFold struct {
	exps map[string]string
	ops  map[[2]string]string // (experiment after folding, operation) → operation
}

func (f nameFold) empty() bool { return len(f.exps) == 0 && len(f.ops) == 0 }

func (f nameFold) name(experiment, operation string) (string, string) {
	if to, ok := f.exps[experiment]; ok {
		experiment = to
	}
	if to, ok := f.ops[[2]string{experiment, operation}]; ok {
		operation = to
	}
	return experiment, operation
}

// batchNames returns the experiments and (experiment, operation) pairs p
// writes, sorted.
func (p *prepared) batchNames() ([]string, [][2]string) {
	exps := make([]string, 0, len(p.exps))
	for _, e := range p.exps {
		exps = append(exps, e.name)
	}
	set := map[[2]string]struct{}{}
	for _, c := range p.counts {
		set[[2]string{c.Experiment, c.Operation}] = struct{}{}
	}
	for _, sm := range p.samples {
		set[[2]string{sm.Experiment, sm.Operation}] = struct{}{}
	}
	for _, sc := range p.sigs {
		set[[2]string{sc.Experiment, sc.Operation}] = struct{}{}
	}
	for _, l := range p.lats {
		set[[2]string{l.experiment, l.operation}] = struct{}{}
	}
	for _, v := range p.variants {
		set[[2]string{v.Experiment, v.Operation}] = struct{}{}
	}
	ops := make([][2]string, 0, len(set))
	for o := range set {
		ops = append(ops, o)
	}
	slices.SortFunc(ops, func(a, b [2]string) int {
		if a[0] != b[0] {
			return compareStrings(a[0], b[0])
		}
		return compareStrings(a[1], b[1])
	})
	return exps, ops
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// admitNames decides, in tx, which of p's experiments and operations are
// admitted under the caps and which fold, records the admitted ones, and
// returns the fold and the names to remember once tx commits. New
// experiments are admitted in name order, new operations in (experiment,
// operation) order. [OtherExperiment] and [OtherOperation] are always
// admitted.
func (s *Store) admitNames(ctx context.Context, tx pgx.Tx, p *prepared) (nameFold, []string, [][2]string, error) {
	exps, ops := p.batchNames()
	fold := nameFold{exps: map[string]string{}, ops: map[[2]string]string{}}
	if s.names.has(exps, ops) {
		return fold, nil, nil, nil
	}
	// Under the lock: how many are admitted, and which of ours already are.
	var nExps int
	knownExps := map[string]struct{}{}
	opCount := map[string]int{}
	knownOps := map[[2]string]struct{}{}
	opExps, opNames := make([]string, len(ops)), make([]string, len(ops))
	for i, o := range ops {
		opExps[i], opNames[i] = o[0], o[1]
	}
	// The experiments an operation may end up in: its own, or "other".
	candExps := append(slices.Clone(exps), OtherExperiment)
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(namesLockSpace))
	b.Queue(`SELECT count(*) FROM experiments WHERE name <> $1`, OtherExperiment).QueryRow(func(row pgx.Row) error {
		return row.Scan(&nExps)
	})
	b.Queue(`SELECT name FROM experiments WHERE name = ANY($1::text[])`, exps).Query(func(rows pgx.Rows) error {
		var n string
		_, err := pgx.ForEachRow(rows, []any{&n}, func() error { knownExps[n] = struct{}{}; return nil })
		return err
	})
	b.Queue(`SELECT experiment, count(*) FILTER (WHERE operation <> $2) FROM operations WHERE experiment = ANY($1::text[]) GROUP BY experiment`,
		candExps, OtherOperation).Query(func(rows pgx.Rows) error {
		var e string
		var n int
		_, err := pgx.ForEachRow(rows, []any{&e, &n}, func() error { opCount[e] = n; return nil })
		return err
	})
	b.Queue(`SELECT o.experiment, o.operation FROM operations o
JOIN unnest($1::text[], $2::text[]) AS q(e, op) ON o.experiment = q.e AND o.operation = q.op`, opExps, opNames).Query(func(rows pgx.Rows) error {
		var e, o string
		_, err := pgx.ForEachRow(rows, []any{&e, &o}, func() error { knownOps[[2]string{e, o}] = struct{}{}; return nil })
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fold, nil, nil, err
	}

	ea := segment.NewAdmission(s.opts.ExperimentCap, nExps, OtherExperiment, func(e string) bool { _, ok := knownExps[e]; return ok })
	for _, e := range exps {
		if ok, _ := ea.Admit(e); !ok {
			fold.exps[e] = OtherExperiment
		}
	}
	// Operations, per experiment they end up in; each (experiment,
	// operation) not yet recorded is inserted, "other" included.
	type newOp struct{ e, o string }
	var insert []newOp
	recorded := map[[2]string]bool{}
	var admittedOps [][2]string
	record := func(k [2]string) {
		if recorded[k] {
			return
		}
		recorded[k] = true
		admittedOps = append(admittedOps, k)
		if _, ok := knownOps[k]; !ok {
			insert = append(insert, newOp{k[0], k[1]})
		}
	}
	opAdmissions := map[string]*segment.Admission{}
	for _, o := range ops {
		e := o[0]
		if to, ok := fold.exps[e]; ok {
			e = to
		}
		a := opAdmissions[e]
		if a == nil {
			a = segment.NewAdmission(s.opts.OperationCap, opCount[e], OtherOperation,
				func(op string) bool { _, ok := knownOps[[2]string{e, op}]; return ok })
			opAdmissions[e] = a
		}
		k := [2]string{e, o[1]}
		if ok, _ := a.Admit(o[1]); !ok {
			fold.ops[k] = OtherOperation
			k[1] = OtherOperation
		}
		record(k)
	}
	if len(insert) > 0 {
		ie, io, at := make([]string, len(insert)), make([]string, len(insert)), make([]time.Time, len(insert))
		now := time.Now().UTC()
		for i, n := range insert {
			ie[i], io[i], at[i] = n.e, n.o, now
		}
		if _, err := tx.Exec(ctx, `INSERT INTO operations (experiment, operation, first_seen)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ON CONFLICT DO NOTHING`, ie, io, at); err != nil {
			return fold, nil, nil, err
		}
	}
	var admittedExps []string
	for _, e := range exps {
		if _, ok := fold.exps[e]; !ok {
			admittedExps = append(admittedExps, e)
		}
	}
	if len(fold.exps) > 0 {
		admittedExps = append(admittedExps, OtherExperiment)
	}
	return fold, admittedExps, admittedOps, nil
}

// renamed returns a copy of b with its names folded as f says, and the pairs
// of the counts folded into another experiment and into another operation.
func renamed(b *Batch, f nameFold) (*Batch, uint64, uint64) {
	out := *b
	var expPairs, opPairs uint64
	out.Counts = make([]Count, len(b.Counts))
	for i, c := range b.Counts {
		e, o := f.name(cleanText(c.Experiment), cleanText(c.Operation))
		n := uint64(max(c.Pairs, 0) + max(c.AAPairs, 0))
		if e != cleanText(c.Experiment) {
			expPairs += n
		} else if o != cleanText(c.Operation) {
			opPairs += n
		}
		c.Experiment, c.Operation = e, o
		out.Counts[i] = c
	}
	out.Samples = make([]Sample, len(b.Samples))
	for i, sm := range b.Samples {
		sm.Experiment, sm.Operation = f.name(cleanText(sm.Experiment), cleanText(sm.Operation))
		out.Samples[i] = sm
	}
	out.Signatures = make([]SignatureCount, len(b.Signatures))
	for i, sc := range b.Signatures {
		sc.Experiment, sc.Operation = f.name(cleanText(sc.Experiment), cleanText(sc.Operation))
		out.Signatures[i] = sc
	}
	out.Latencies = make([]Latency, len(b.Latencies))
	for i, l := range b.Latencies {
		l.Experiment, l.Operation = f.name(cleanText(l.Experiment), cleanText(l.Operation))
		out.Latencies[i] = l
	}
	out.Variants = make([]VariantCount, len(b.Variants))
	for i, v := range b.Variants {
		v.Experiment, v.Operation = f.name(cleanText(v.Experiment), cleanText(v.Operation))
		out.Variants[i] = v
	}
	return &out, expPairs, opPairs
}
