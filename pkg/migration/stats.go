package migration

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/parityhq/parity/pkg/envelope"
)

// Stats counts what a [Reader] or [Writer] did. Counters only grow.
//
// Every call whose stage compares the two paths (shadow and live for reads;
// dualwrite, shadow, live and rampdown for writes) is counted in Offered and,
// once its pair is complete, in exactly one of Published, Dropped and
// SampledOut. So, in every snapshot,
//
//	Offered == Published + Dropped + SampledOut + Pending
//
// and Pending is zero once [Reader.Wait] or [Writer.Wait] returns nil.
type Stats struct {
	Experiment string
	Operation  string
	Kind       envelope.Kind

	Calls      uint64 // calls to Read or Write
	Offered    uint64 // calls in a comparing stage
	Published  uint64 // pairs the Publisher accepted
	Dropped    uint64 // pairs the Publisher refused, and reads over MaxInFlight
	SampledOut uint64 // calls in a comparing stage left out of the sample
	Pending    uint64 // pairs not complete yet

	FlagErrors    uint64 // flag evaluations that failed or gave an unknown stage; the default stage was used
	Panics        uint64 // panics recovered from Old, New and Compare
	Timeouts      uint64 // non-authoritative sides that did not answer within Timeout
	MarshalErrors uint64 // results that could not be encoded as JSON
	Frozen        uint64 // writes refused with ErrWriteFrozen
	InFlight      int64  // non-authoritative reads running now, abandoned ones included
}

type counters struct {
	calls         atomic.Uint64
	offered       atomic.Uint64
	published     atomic.Uint64
	dropped       atomic.Uint64
	sampledOut    atomic.Uint64
	flagErrors    atomic.Uint64
	panics        atomic.Uint64
	timeouts      atomic.Uint64
	marshalErrors atomic.Uint64
	frozen        atomic.Uint64
	inFlight      atomic.Int64
}

func (c *core) stats() Stats {
	n := &c.n
	// Read the outcomes before Offered, so that Pending is never negative.
	s := Stats{
		Experiment: c.experiment, Operation: c.operation, Kind: c.kind,
		Published:     n.published.Load(),
		Dropped:       n.dropped.Load(),
		SampledOut:    n.sampledOut.Load(),
		FlagErrors:    n.flagErrors.Load(),
		Panics:        n.panics.Load(),
		Timeouts:      n.timeouts.Load(),
		MarshalErrors: n.marshalErrors.Load(),
		Frozen:        n.frozen.Load(),
		InFlight:      n.inFlight.Load(),
	}
	s.Offered = n.offered.Load()
	s.Calls = n.calls.Load()
	if done := s.Published + s.Dropped + s.SampledOut; s.Offered > done {
		s.Pending = s.Offered - done
	}
	return s
}

// wait polls until every offered pair is complete or ctx is done.
func (c *core) wait(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		n := &c.n
		done := n.published.Load() + n.dropped.Load() + n.sampledOut.Load()
		if done >= n.offered.Load() {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
