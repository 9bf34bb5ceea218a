// Package reconcile compares a keyed dataset in an old store with its copy
// in a new one, every row, and counts per segment what agrees and what does
// not: rows compared, matched, divergent, missing in new, extra in new, and
// invalid (a value the differ cannot parse, with its reason).
//
// A [Source] is one side: a table or view, a DynamoDB table, a service's
// API, read in key order by key ranges; package pgsource is PostgreSQL's.
// [Run] walks the key space in chunks of the old side's rows. When both
// sides implement [Checksummer] with compatible forms, each chunk is first
// summarised inside both stores; equal summaries settle the chunk without
// reading a row, and unequal ones are split and summarised again until the
// parts are small enough to compare row by row (data-diff's bisection).
// Rows are judged by pkg/diff under the caller's rules, so ignore rules,
// numeric tolerances and timestamp rules apply as they do to live pairs.
//
// # Guarantees
//
// A checksum never hides a difference the differ would report (but for a
// hash collision, about 2^-64 per chunk), nor reports one the rules ignore:
// it covers only the columns the rules do not ignore entirely, its
// canonical forms make equal summaries mean rows the differ finds equal,
// and unequal summaries only send a range to be compared row by row, where
// the rules decide (docs/reconcile.md).
//
// A row that does not match is read again from both sides after
// [Options.RecheckDelay], and only that second judgement counts, so writes
// in flight during a sweep are not reported.
//
// Chunks reach [Options.OnChunk] in key order, each final, with the key it
// ends at; a caller that commits a chunk's counts with that checkpoint in one
// transaction, and resumes with [Options.After], counts every row exactly
// once across crashes. Work per chunk is bounded by [Options.ChunkRows]
// (pages of the new side too), reads by [Options.RateLimit].
//
// The package imports no database driver, so applications can implement
// Source for their own stores.
package reconcile
