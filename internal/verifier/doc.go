// Package verifier consumes pairs from JetStream, judges each with a
// [diff.Differ], and writes per-segment counts, divergence samples and dead
// letters to a [Store].
//
// Guarantees:
//   - Any number of [Worker]s, in one process or many, share one durable pull
//     consumer; the server spreads messages across them.
//   - Pairs are split into segments with their experiment's stored segment
//     definition ([segment.Definition]), the same in every worker. A worker
//     that meets an experiment without one stores its own
//     ([Options.SegmentAttrs], [Options.SegmentCap]) unless another got there
//     first, and judges that experiment's pairs at the next flush, once it
//     knows the stored one. Definitions, like diff rules and redactions, are
//     reloaded on the collector's notice and every [Options.RulesReload].
//   - Counts are pre-aggregated in memory per (experiment, operation, segment,
//     minute) and written in one transaction per flush, at most
//     [Options.FlushInterval] apart. A message is acknowledged only after the
//     transaction that counted it has committed.
//   - A redelivered message (a worker died between commit and ack) is checked
//     against the stream sequences the store recorded with each batch, so it
//     is counted once.
//   - An envelope that cannot be decoded or validated is stored as a dead
//     letter with its reason and terminated, never redelivered, never fatal.
//   - While the store is unreachable the worker stops acknowledging, keeps its
//     messages in progress, and retries with backoff until it succeeds or its
//     context ends.
package verifier
