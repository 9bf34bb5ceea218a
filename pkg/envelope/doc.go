// Package envelope defines Parity's wire format: the pair of observations
// (control = old path, candidate = new path) that a client hook or the HTTP
// ingest hands to the verifiers. Version 1 ([Version]) is one pair per
// message; version 2 ([BatchVersion]) is a batch of version-1 pairs of one
// subject in one message, which is what the Go hook sends under load.
//
// The format is JSON. Every envelope carries its version; a decoder rejects
// any version it does not know rather than guessing. [Decode] and
// [DecodeMessage] never panic on any input, cap the size of what they read
// at [MaxSize], and return a [*FieldError] naming the offending field for
// every validation failure, so a worker can dead-letter the message — or,
// in a batch, the one bad pair — with a reason a person can act on.
//
// The codec is single-pass. [AppendPair] and [BatchWriter] validate and
// encode a pair into a reused buffer without allocating, writing exactly
// what encoding/json would. [Decode] validates while it reads and keeps
// each observation's value as a slice of the message, for the differ's own
// parser; envelopes outside the usual shape are read by a general decoder
// with encoding/json's rules, so the accepted set and the errors are those
// of encoding/json (fuzzed against the previous decoder).
//
// Subjects carry the experiment and the operation ([Subject]), so a NATS
// deployment can filter or authorise per experiment. Every message carries
// its envelope's id — the pair's [Pair.ID], or a batch's id derived from its
// pairs' ids — as the Nats-Msg-Id header, so JetStream stores a message
// published twice within the stream's duplicate window once.
//
// docs/wire-format.md describes the same format for programs in other
// languages; this package is the single source of truth for it.
package envelope
