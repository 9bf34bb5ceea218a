package diff

import (
	"encoding/json"
	"fmt"

	"github.com/google/go-cmp/cmp"
)

// Render shows how two values differ, for people: go-cmp's report on the
// values as encoding/json decodes them, with "-" lines from control and "+"
// lines from candidate. It returns "" when the decoded values are equal, and
// an error when a value is not valid JSON. An empty value renders as nil.
//
// Render is slow (milliseconds for a few kilobytes) and its format is not
// stable; use it for one sample on demand, never on the hot path, and use
// [Differ.Values] to decide whether values agree.
func Render(control, candidate []byte) (string, error) {
	a, err := decodeAny(control)
	if err != nil {
		return "", fmt.Errorf("diff: render control value: %w", err)
	}
	b, err := decodeAny(candidate)
	if err != nil {
		return "", fmt.Errorf("diff: render candidate value: %w", err)
	}
	return cmp.Diff(a, b), nil
}

func decodeAny(v []byte) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return nil, err
	}
	return x, nil
}
