// Package envelope defines Parity's wire format, version 1: the pair of
// observations (control = old path, candidate = new path) that a client hook
// or the HTTP ingest hands to the verifiers.
//
// The format is JSON. Every envelope carries [Version]; a decoder rejects any
// other version rather than guessing. [Decode] never panics on any input, caps
// the size of what it reads at [MaxSize], and returns a [*FieldError] naming the
// offending field for every validation failure, so a worker can dead-letter the
// message with a reason a person can act on.
//
// Subjects carry the experiment and the operation ([Subject]), so a NATS
// deployment can filter or authorise per experiment. The pair's [Pair.ID] is
// sent as the Nats-Msg-Id header, so JetStream drops a duplicate published
// within the stream's duplicate window.
//
// docs/wire-format.md describes the same format for programs in other
// languages; this package is the single source of truth for it.
package envelope
