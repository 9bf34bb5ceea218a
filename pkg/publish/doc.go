// Package publish is the transport of Parity's client hook: it takes the
// pairs an application produces and publishes them to NATS JetStream, where
// the verifiers read them.
//
// A [Publisher] never blocks and never panics into the application.
// [Publisher.Publish] only offers the pair to a bounded queue; if the queue is
// full, or the publisher is closed, the pair is dropped and counted, and
// Publish returns false. It allocates nothing. A single background goroutine
// fills in a missing [envelope.Pair.ID], [envelope.Pair.Time] and
// [envelope.Pair.Version] and encodes the pair straight into the open batch
// of its subject ([envelope.BatchWriter]). A batch is published as one
// message when it holds [Options.BatchPairs] pairs or [Options.BatchBytes]
// bytes, once the queue has been emptied and its first pair has waited
// [Options.Linger], or on Flush, as OpenTelemetry exporters and Kafka
// producers batch. A batch of one pair is a plain version-1 envelope; a
// larger one is a version-2 batch envelope (docs/wire-format.md). Each
// message carries its envelope's id as the Nats-Msg-Id header (the pair's
// id, or the batch's), so JetStream stores a message published twice
// within the stream's duplicate window once. The publish is asynchronous:
// JetStream's ack arrives on a reply subscription of the publisher.
//
// Memory is bounded: at most [Options.QueueSize] pairs wait in the queue and
// at most [Options.MaxPending] published pairs await an ack (their encoded
// messages are kept for a retry and reused once acknowledged). A message
// that is not acknowledged within [Options.AckTimeout], or that JetStream
// refuses (stream full), counts every pair in it as failed and is never
// retried by this package; only a refusal for want of a stream leader is
// sent again, with the same Nats-Msg-Id, until AckTimeout. Errors go to
// [Options.OnError], whose text never contains the pair's values.
//
// Every pair offered is accounted for. [Publisher.Stats] returns counters for
// which these hold in every snapshot:
//
//	Offered  == Enqueued + Dropped
//	Enqueued == Published + Failed + Pending
//
// Published counts pairs acknowledged by JetStream, including duplicates the
// stream discarded. After [Publisher.Flush] returns nil, every pair enqueued
// before the call is counted as Published or Failed. After [Publisher.Close]
// returns nil, Pending is zero, the publisher's goroutine has exited and its
// ack subscription is removed.
//
// The publisher does not create the stream; the verifier does. This package
// imports only the standard library, nats.go and [envelope], so applications
// that embed it do not link a database driver, a web framework or a NATS
// server.
package publish
