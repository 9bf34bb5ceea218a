package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/parityhq/parity/pkg/natsnames"
)

// Bucket and key of the rollout state in NATS JetStream's key-value store.
// The collector writes one entry per flag, keyed by the flag key; providers
// watch the bucket.
const (
	// KVBucket is the key-value bucket holding one [Document] per flag:
	// [natsnames.RolloutBucket], where every NATS name lives.
	KVBucket = natsnames.RolloutBucket
	// DocumentVersion is the version of the [Document] format this package
	// writes and reads. A reader refuses other versions rather than guess
	// at fields it does not know.
	DocumentVersion = 1
	// MaxFlagKeyLen is the longest flag key: it is a KV key, so also a NATS
	// subject token sequence.
	MaxFlagKeyLen = 128
)

// Status of a rollout.
const (
	// StatusActive: the controller evaluates the gate and, with AutoPromote,
	// advances; a breach steps back.
	StatusActive = "active"
	// StatusPaused: an operator paused it, or the controller stepped back on
	// a breach; the state holds until someone resumes it.
	StatusPaused = "paused"
	// StatusKilled: the kill switch was used; only an operator moves it on.
	StatusKilled = "killed"
)

// Document is one flag's rollout as the collector publishes it and as
// providers evaluate it: the plan, how far it is, and a revision that grows
// with every change. It is the value of key [Document.Flag] in [KVBucket],
// encoded as JSON.
type Document struct {
	// Version is [DocumentVersion].
	Version int `json:"version"`
	// Flag is the OpenFeature flag key applications evaluate.
	Flag  string `json:"flag"`
	Plan  Plan   `json:"plan"`
	State State  `json:"state"`
	// Status is StatusActive, StatusPaused or StatusKilled; it does not
	// change what users get (State does), only what the controller does.
	Status string `json:"status"`
	// Revision increases with every change of plan, state or status. A
	// provider ignores a document whose revision is not above the last it
	// applied, so a delayed or replayed write never moves a rollout back in
	// time.
	Revision  int64     `json:"revision"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks a document read from the bucket: the version this package
// reads, a valid flag key, a valid plan, and a state within it.
func (d Document) Validate() error {
	if d.Version != DocumentVersion {
		return errorf("version", "%d is not %d, the document version this reader understands; upgrade it", d.Version, DocumentVersion)
	}
	if err := ValidFlagKey(d.Flag); err != nil {
		return err
	}
	if err := d.Plan.Validate(); err != nil {
		return err
	}
	if d.State.Step < 0 || d.State.Step > len(d.Plan.Steps) {
		return fmt.Errorf("%w: state.step %d is outside 0..%d", ErrInvalidState, d.State.Step, len(d.Plan.Steps))
	}
	if d.Revision <= 0 {
		return errorf("revision", "%d is not positive", d.Revision)
	}
	return nil
}

// ParseDocument decodes and validates a document.
func ParseDocument(b []byte) (Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return Document{}, fmt.Errorf("rollout: document: %w", err)
	}
	if err := d.Validate(); err != nil {
		return Document{}, err
	}
	return d, nil
}

// ValidFlagKey checks that key can name a flag: 1 to [MaxFlagKeyLen]
// characters of A-Z a-z 0-9 _ - and dots between them (it is a KV key).
func ValidFlagKey(key string) error {
	if key == "" || len(key) > MaxFlagKeyLen {
		return errorf("flag", "must be 1 to %d characters", MaxFlagKeyLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		case c == '.' && i > 0 && i < len(key)-1 && key[i-1] != '.':
		default:
			return errorf("flag", "%q: only A-Z a-z 0-9 _ - and single dots between them", key)
		}
	}
	return nil
}

// StringAttrs converts OpenFeature evaluation-context attributes to the
// strings [Rule]s match: strings as they are, booleans as "true"/"false",
// integers in decimal, other numbers in the shortest form that reads back
// the same ('g' format); anything else (lists, objects, nil) is left out.
// Both Parity's Go provider and the collector's OFREP endpoint use it, so a
// rule matches the same users in every language.
func StringAttrs(attrs map[string]any) map[string]string {
	out := make(map[string]string, len(attrs))
	for k, v := range attrs {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case int:
			out[k] = strconv.Itoa(v)
		case int32:
			out[k] = strconv.FormatInt(int64(v), 10)
		case int64:
			out[k] = strconv.FormatInt(v, 10)
		case uint64:
			out[k] = strconv.FormatUint(v, 10)
		case float32:
			out[k] = strconv.FormatFloat(float64(v), 'g', -1, 32)
		case float64:
			if v == math.Trunc(v) && math.Abs(v) < 1e15 {
				out[k] = strconv.FormatInt(int64(v), 10)
			} else {
				out[k] = strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
	}
	return out
}
