// Package controller moves rollouts: it is the rollout controller that
// advances a rollout step by step while its promotion gate passes, steps it
// back on a breach, and carries out operators' actions (plan, promote,
// rollback, pause, resume, kill).
//
// Every change, an operator's or its own, is checked by
// [rollout.Transition], written through the [Store] it is given with its
// audit entry under a compare-and-set on the rollout's revision (so several
// collectors may run controllers against one database and exactly one of
// them makes each change), then handed to the [Flags] table the collector
// serves over OFREP and published to the NATS KV bucket [natsnames.RolloutBucket]
// that Parity's OpenFeature provider watches. The bucket's documents only
// ever move forward in revision. docs/rollout.md describes the rules.
//
// The gate judges each (operation, segment) of the current step on its own,
// over the pairs counted since the step settled ([Options.Settle] after the
// change, so that pairs from before it are not judged as the new step's).
// The counts at that moment are kept with the rollout as a baseline, by
// counter name ([report.Counters]). Each unit's minute series since then
// (less the baseline) goes to the gate's change detector
// ([report.DetectBreach]), so a rate that rises late in a long step steps
// it back within minutes; the series is read from the store at every look,
// so the detector keeps no state of its own and survives restarts.
//
// The package knows nothing of HTTP. A change it does not make is an
// [*Error] whose kind ([ErrInvalid], [ErrNotFound], [ErrRefused],
// [ErrConflict]) the caller maps to its answer, and whose Err says why for
// people. Other errors are the store's or the bucket's, wrapped.
package controller
