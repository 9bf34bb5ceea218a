// Package publish is the transport of Parity's client hook: it takes the
// pairs an application produces and publishes them to NATS JetStream, where
// the verifiers read them.
//
// A [Publisher] never blocks and never panics into the application.
// [Publisher.Publish] only offers the pair to a bounded queue; if the queue is
// full, or the publisher is closed, the pair is dropped and counted, and
// Publish returns false. It allocates nothing. A single background goroutine
// fills in a missing [envelope.Pair.ID], [envelope.Pair.Time] and
// [envelope.Pair.Version], encodes the pair with [envelope.Marshal], and
// publishes it on [envelope.Pair.Subject] with the pair's ID as the
// Nats-Msg-Id header, so JetStream stores a pair published twice once. The
// publish is asynchronous: JetStream's ack arrives on a reply subscription
// of the publisher.
//
// Memory is bounded: at most [Options.QueueSize] pairs wait in the queue and
// at most [Options.MaxPending] published pairs await an ack (the encoded
// bytes of those are held only by the nats.Conn's buffers). A pair that is
// not acknowledged within [Options.AckTimeout], or that JetStream refuses (no
// stream for the subject, stream full), is counted as failed and never
// retried by this package. Errors go to [Options.OnError], whose text never
// contains the pair's values.
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
