// Package natsnames holds the names Parity's processes and applications
// agree on in NATS: subjects, the pair stream and its consumer, and the
// key-value buckets. It is the one place they are spelled; every other
// package refers to these constants.
//
// It imports nothing, so client packages (pkg/publish, pkg/flagprovider,
// pkg/envelope) and server packages share it without pulling server
// dependencies into applications. Changing a value here changes the wire
// contract: every process and hook of a deployment must agree on it.
// docs/deploy.md and the least-permission examples list the same names.
package natsnames

const (
	// PairSubjectPrefix is the first part of every pair subject: pairs are
	// published to PairSubjectPrefix.<experiment>.<operation>.
	PairSubjectPrefix = "parity.pairs"
	// PairSubjects matches every pair subject: what the pair stream stores
	// and the verifiers consume.
	PairSubjects = PairSubjectPrefix + ".>"
	// PairStream is the JetStream stream that holds pairs until a verifier
	// has counted them.
	PairStream = "PARITY_PAIRS"
	// VerifierDurable is the durable consumer of PairStream that all
	// verifiers share.
	VerifierDurable = "parity-verifiers"

	// HookReportSubject is where publishers (hooks) report their counters,
	// over core NATS, fire and forget.
	HookReportSubject = "parity.hooks.stats"
	// RulesChangedSubject is where the collector announces that an
	// experiment's diff rules (or other per-experiment settings the verifiers
	// hold) changed; the message body is the experiment's name.
	RulesChangedSubject = "parity.rules.changed"

	// RolloutBucket is the key-value bucket holding one rollout document per
	// flag, which the OpenFeature provider watches.
	RolloutBucket = "PARITY_ROLLOUTS"
)

// PairSubject returns the subject a pair of experiment and operation is
// published to.
func PairSubject(experiment, operation string) string {
	return PairSubjectPrefix + "." + experiment + "." + operation
}
