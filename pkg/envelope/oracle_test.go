package envelope

import (
	"encoding/json"
	"unicode/utf8"
)

// oracleDecode is the decoder this package had before its single-pass
// codec, verbatim but for names: encoding/json with a validation pass. The
// fuzz test holds Decode to it.
func oracleDecode(data []byte) (*Pair, error) {
	if len(data) > MaxSize {
		return nil, ErrTooLarge
	}
	if !utf8.Valid(data) {
		return nil, &FieldError{Field: "(envelope)", Problem: "not valid UTF-8"}
	}
	var w oracleWirePair
	if err := json.Unmarshal(data, &w); err != nil {
		// A future version may not fit this struct: say so rather than
		// report a confusing field error.
		if verr := versionError(data); verr != nil {
			return nil, verr
		}
		return nil, syntaxError(err)
	}
	p := &w.Pair
	if p.Version != Version {
		return nil, versionError(data)
	}
	for _, side := range []struct {
		name string
		obs  *oracleWireObservation
		dst  *Observation
	}{{"control", w.Control, &p.Control}, {"candidate", w.Candidate, &p.Candidate}} {
		switch {
		case side.obs == nil:
			return nil, &FieldError{side.name, "missing"}
		case side.obs.DurationNS == nil:
			return nil, &FieldError{side.name + ".duration_ns", "missing"}
		}
		*side.dst = Observation{Value: side.obs.Value, Error: side.obs.Error, Status: side.obs.Status, DurationNS: *side.obs.DurationNS}
	}
	// The decoder has checked that both values are valid JSON.
	if err := p.validate(false); err != nil {
		return nil, err
	}
	return p, nil
}

// oracleWirePair is a Pair as decoded, with its sides as pointers so that a side
// or a duration left out is an error rather than a silent zero (which would
// compare as a match). Its Control and Candidate hide the embedded Pair's.
type oracleWirePair struct {
	Pair
	Control   *oracleWireObservation `json:"control"`
	Candidate *oracleWireObservation `json:"candidate"`
}

type oracleWireObservation struct {
	Value      json.RawMessage `json:"value"`
	Error      string          `json:"error"`
	Status     Status          `json:"status"`
	DurationNS *int64          `json:"duration_ns"`
}
