package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/verifier"
)

// NATSFlags registers the NATS security flags (credentials file, TLS) and
// returns a function that turns them into client options.
func NATSFlags(fs *FlagSet) func() ([]nats.Option, error) {
	creds := fs.String("nats-creds", "", "NATS credentials file (JWT + NKey seed)")
	ca := fs.String("nats-tls-ca", "", "CA certificate file to verify the NATS server with")
	cert := fs.String("nats-tls-cert", "", "client certificate file for NATS mutual TLS")
	key := fs.String("nats-tls-key", "", "client key file for NATS mutual TLS")
	fs.Env("nats-creds", "NATS_CREDS")
	fs.Env("nats-tls-ca", "NATS_TLS_CA")
	fs.Env("nats-tls-cert", "NATS_TLS_CERT")
	fs.Env("nats-tls-key", "NATS_TLS_KEY")
	return func() ([]nats.Option, error) {
		var opts []nats.Option
		if *creds != "" {
			if _, err := os.Stat(*creds); err != nil {
				return nil, fmt.Errorf("--nats-creds: %w", err)
			}
			opts = append(opts, nats.UserCredentials(*creds))
		}
		if *ca != "" {
			opts = append(opts, nats.RootCAs(*ca))
		}
		if (*cert == "") != (*key == "") {
			return nil, fmt.Errorf("--nats-tls-cert and --nats-tls-key go together")
		}
		if *cert != "" {
			opts = append(opts, nats.ClientCert(*cert, *key))
		}
		return opts, nil
	}
}

// VerifierFlags registers the verifier's flags into o and returns a function
// that finishes them (lists, validation) after parsing.
func VerifierFlags(fs *FlagSet, o *verifier.Options) func() error {
	d := verifier.DefaultOptions()
	attrs := fs.String("segment-attrs", strings.Join(d.SegmentAttrs, ","), "comma-separated user attributes a segment is made of, for an experiment without a stored segment definition (set one through the API)")
	fs.IntVar(&o.SegmentCap, "segment-cap", d.SegmentCap, "distinct segments before further ones fold into \"other\", for an experiment without a stored segment definition")
	fs.DurationVar(&o.FlushInterval, "flush-interval", d.FlushInterval, "longest time a judged pair waits before it is written (at most 1s)")
	fs.IntVar(&o.MaxBatch, "max-batch", d.MaxBatch, "flush early when this many messages wait")
	fs.IntVar(&o.MaxAckPending, "max-ack-pending", d.MaxAckPending, "unacknowledged messages allowed across all verifiers")
	fs.IntVar(&o.PullBytes, "pull-bytes", d.PullBytes, "most bytes a worker asks the NATS server for at once; keep well below the server's max_pending (64 MiB by default), at least 2 MiB")
	fs.DurationVar(&o.AckWait, "ack-wait", d.AckWait, "how long an unacknowledged pair waits before it is redelivered to another verifier")
	fs.Int64Var(&o.Stream.MaxBytes, "stream-max-bytes", d.Stream.MaxBytes, "pair stream size limit in bytes; when full, new pairs are refused, never old ones dropped")
	fs.DurationVar(&o.Stream.MaxAge, "stream-max-age", d.Stream.MaxAge, "how long an unconsumed pair is kept")
	fs.IntVar(&o.Stream.Replicas, "stream-replicas", d.Stream.Replicas, "pair stream replicas (1, 3 or 5)")
	fs.DurationVar(&o.Stream.Duplicates, "stream-duplicates", d.Stream.Duplicates, "window within which a message republished with the same Nats-Msg-Id is stored once; at least the hooks' ack timeout")
	fs.DurationVar(&o.MaxClockSkew, "max-clock-skew", d.MaxClockSkew, "how far ahead of this clock a pair's time may be; later pairs are dead-lettered")
	fs.DurationVar(&o.MaxPairAge, "max-pair-age", 0, "how far behind this clock a pair's time may be; older pairs are dead-lettered (0: --stream-max-age plus 1h)")
	for name, env := range map[string]string{
		"segment-attrs": "PARITY_SEGMENT_ATTRS", "segment-cap": "PARITY_SEGMENT_CAP", "flush-interval": "PARITY_FLUSH_INTERVAL", "max-batch": "PARITY_MAX_BATCH",
		"max-ack-pending": "PARITY_MAX_ACK_PENDING", "pull-bytes": "PARITY_PULL_BYTES", "ack-wait": "PARITY_ACK_WAIT", "stream-max-bytes": "PARITY_STREAM_MAX_BYTES",
		"stream-max-age": "PARITY_STREAM_MAX_AGE", "stream-replicas": "PARITY_STREAM_REPLICAS",
		"stream-duplicates": "PARITY_STREAM_DUPLICATES", "max-clock-skew": "PARITY_MAX_CLOCK_SKEW", "max-pair-age": "PARITY_MAX_PAIR_AGE",
	} {
		fs.Env(name, env)
	}
	return func() error {
		o.SegmentAttrs = List(*attrs)
		if o.SegmentAttrs == nil {
			o.SegmentAttrs = []string{}
		}
		return nil
	}
}

// StoreFlags registers the store's caps into o: how many experiments, and
// operations per experiment, are admitted before further ones fold into
// "other".
func StoreFlags(fs *FlagSet, o *store.Options) {
	fs.IntVar(&o.ExperimentCap, "experiment-cap", store.DefaultExperimentCap, "distinct experiments before further ones are counted in experiment \"other\"")
	fs.IntVar(&o.OperationCap, "operation-cap", store.DefaultOperationCap, "distinct operations per experiment before further ones are counted in operation \"other\"")
	fs.Env("experiment-cap", "PARITY_EXPERIMENT_CAP")
	fs.Env("operation-cap", "PARITY_OPERATION_CAP")
}
