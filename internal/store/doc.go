// Package store keeps Parity's counts, samples and dead letters in PostgreSQL.
// The verifier writes through [Store.Apply]; the collector reads through
// [Store.Experiments], [Store.Segments], [Store.Samples] and friends.
//
// Guarantees:
//
//   - [Open] creates the database if it does not exist (tolerating a concurrent
//     creator) and migrates the schema to the version embedded in this package.
//     Migrations run under a PostgreSQL advisory lock, so any number of
//     processes may call Open at once.
//   - [Store.Apply] is atomic: a [Batch] is written in one transaction, all of
//     it or none of it.
//   - Counts are exact. Apply adds each [Count] to what is stored with an
//     upsert; nothing is sampled or estimated. An experiment's totals in
//     [Experiment] are kept in the same transaction as its per-minute counts.
//   - Each experiment admits at most [Options.SegmentCap] distinct segments.
//     A segment once admitted stays admitted; segments that arrive once the
//     cap is reached are folded into [OtherSegment], for counts and samples
//     alike. Admission is serialised per experiment by a row lock on the
//     experiment, so concurrent verifiers never admit more than the cap.
//   - At most [Options.SamplesPerKey] samples, the newest by time, are kept per
//     (experiment, operation, segment).
//   - A batch records the JetStream stream sequences it consumed
//     ([Batch.Stream], [Batch.Seqs]) in the same transaction, so a verifier can
//     ask [Store.Applied] which redelivered messages are already counted. No
//     message is counted twice, even when two verifiers race: a batch whose
//     sequences were all recorded before (a retry after a lost commit reply)
//     is a successful no-op, and a batch that overlaps an earlier one only in
//     part writes nothing and fails with [ErrAlreadyApplied].
//   - Strings that PostgreSQL cannot store (invalid UTF-8, NUL bytes) are
//     repaired with U+FFFD rather than failing the batch, so one bad envelope
//     cannot block a verifier.
//
// All times are stored as timestamptz and returned in UTC. Errors start with
// "store: " and wrap their cause; an unknown experiment or sample is reported
// with [ErrNotFound]. Errors never contain the password of the database URL.
package store
