package collector

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/pkg/rollout"
)

// This file serves the rollout flags over OFREP, the OpenFeature Remote
// Evaluation Protocol (https://openfeature.dev/specification/appendix-c), so
// that applications in any language read their migration stage with
// OpenFeature's stock OFREP providers. The answers are exactly those of
// [rollout.Decide] over the documents in [handlers.flags]; docs/ofrep.md
// describes the endpoints for application developers.
//
// The evaluation context (targeting keys and attribute values) is personal
// data: it is never logged, and error details never quote it.

// OFREP routes.
const (
	pathOFREP              = "/ofrep/"
	pathOFREPFlags         = "/ofrep/v1/evaluate/flags"
	pathOFREPFlag          = "/ofrep/v1/evaluate/flags/:key"
	pathOFREPConfiguration = "/ofrep/v1/configuration"
)

// MaxOFREPBytes bounds the body of an OFREP evaluation request: 64 KiB, far
// more than any evaluation context needs. A larger body is answered 413.
const MaxOFREPBytes = 64 << 10

// ofrepMinPollingIntervalMs is the shortest bulk-evaluation polling interval
// GET /ofrep/v1/configuration lets providers use, in milliseconds.
// Evaluation is in memory and cheap; documents change at most once per
// controller tick.
const ofrepMinPollingIntervalMs = 1000

// headerAPIKey carries a token for OFREP providers configured with an API
// key (ofrep.WithApiKeyAuth in Go) instead of a bearer token.
const headerAPIKey = "X-API-Key"

// OpenFeature error codes the OFREP endpoints answer with.
const (
	ofrepParseError     = "PARSE_ERROR"
	ofrepInvalidContext = "INVALID_CONTEXT"
	ofrepFlagNotFound   = "FLAG_NOT_FOUND"
	ofrepGeneral        = "GENERAL"
)

// ofrepSuccess is one evaluated flag: value and variant are the stage.
type ofrepSuccess struct {
	Key      string        `json:"key"`
	Value    string        `json:"value"`
	Reason   string        `json:"reason"`
	Variant  string        `json:"variant"`
	Metadata ofrepMetadata `json:"metadata"`
}

// ofrepMetadata is the flag metadata of an evaluation. OFREP allows only
// booleans, strings and numbers as values.
type ofrepMetadata struct {
	// Revision is the document's revision: it grows with every change.
	Revision int64 `json:"revision"`
	// Step is how many of the plan's steps are applied (the rollout's
	// position), as in Parity's Go provider.
	Step int `json:"step"`
	// MatchedStep is the index of the plan step that gave the stage, -1 for
	// the plan's base stage.
	MatchedStep int `json:"matched_step"`
	// Status is the rollout's: active, paused or killed.
	Status string `json:"status"`
	// Experiment is the plan's experiment.
	Experiment string `json:"experiment"`
	// Detail is [rollout.Decision.String], e.g. "TARGETING_MATCH steps[1]
	// rule country".
	Detail string `json:"detail"`
}

// ofrepFailure is an error answer: evaluationFailure and flagNotFound of a
// single evaluation (with the key), bulkEvaluationFailure (without).
type ofrepFailure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// ofrepBulk is the answer of a bulk evaluation.
type ofrepBulk struct {
	Flags []ofrepSuccess `json:"flags"`
}

// evalContext is what an evaluation depends on: the targeting key ("" when
// the request has none) and the attributes as [rollout.StringAttrs] makes
// them.
type evalContext struct {
	targetingKey string
	attrs        map[string]string
}

// ofrepError is a request the OFREP endpoints refuse: an HTTP status and an
// OpenFeature error code. Its details never quote the context.
type ofrepError struct {
	status  int
	code    string
	details string
}

// ofrepEvaluate answers POST /ofrep/v1/evaluate/flags/{key}.
func (s *handlers) ofrepEvaluate(c echo.Context) error {
	key := pathText(c, "key")
	ec, bad := readEvalContext(c.Request())
	if bad != nil {
		return c.JSON(bad.status, ofrepFailure{Key: key, ErrorCode: bad.code, ErrorDetails: bad.details})
	}
	d, ok := s.flags.get(key)
	if !ok {
		return c.JSON(http.StatusNotFound, ofrepFailure{Key: key, ErrorCode: ofrepFlagNotFound,
			ErrorDetails: fmt.Sprintf("no rollout has the flag key %q", key)})
	}
	return c.JSON(http.StatusOK, evaluateDoc(d, ec))
}

// ofrepBulkEvaluate answers POST /ofrep/v1/evaluate/flags: every flag,
// evaluated for the request's context. Its ETag changes whenever any flag's
// revision changes, and differs between contexts that can be answered
// differently; a request whose If-None-Match holds the current ETag gets 304.
func (s *handlers) ofrepBulkEvaluate(c echo.Context) error {
	ec, bad := readEvalContext(c.Request())
	if bad != nil {
		return c.JSON(bad.status, ofrepFailure{ErrorCode: bad.code, ErrorDetails: bad.details})
	}
	docs, version := s.flags.all()
	etag := bulkETag(version, ec)
	c.Response().Header().Set("ETag", etag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	out := ofrepBulk{Flags: make([]ofrepSuccess, 0, len(docs))}
	for _, d := range docs {
		out.Flags = append(out.Flags, evaluateDoc(d, ec))
	}
	return c.JSON(http.StatusOK, out)
}

// ofrepConfigurationBody is the answer of GET /ofrep/v1/configuration, and
// ofrepConfigurationETag its entity tag; both never change while the process
// runs.
var ofrepConfigurationBody, ofrepConfigurationETag = func() ([]byte, string) {
	b, _ := json.Marshal(map[string]any{ // plain values always marshal
		"name": "parity",
		"capabilities": map[string]any{
			"cacheInvalidation": map[string]any{
				"polling": map[string]any{"enabled": true, "minPollingIntervalMs": ofrepMinPollingIntervalMs},
			},
		},
	})
	sum := sha256.Sum256(b)
	return b, `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// ofrepConfiguration answers GET /ofrep/v1/configuration, the OFREP
// extension telling providers what the server supports: bulk evaluation can
// be polled (with its ETag), no more often than ofrepMinPollingIntervalMs.
func (s *handlers) ofrepConfiguration(c echo.Context) error {
	c.Response().Header().Set("ETag", ofrepConfigurationETag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), ofrepConfigurationETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, ofrepConfigurationBody)
}

// evaluateDoc evaluates d for ec.
func evaluateDoc(d rollout.Document, ec evalContext) ofrepSuccess {
	dec := rollout.Decide(d.Plan, d.State, ec.targetingKey, ec.attrs)
	return ofrepSuccess{
		Key: d.Flag, Value: string(dec.Stage), Variant: string(dec.Stage), Reason: dec.Reason,
		Metadata: ofrepMetadata{Revision: d.Revision, Step: d.State.Step, MatchedStep: dec.Step, Status: d.Status,
			Experiment: d.Plan.Experiment, Detail: dec.String()},
	}
}

// readEvalContext reads an evaluation request's body, {"context": {...}}.
//
// An empty body, an empty object and a null context are an empty context.
// A body that is not one JSON object is a PARSE_ERROR; a context that is not
// an object, or a targetingKey that is not a string, is INVALID_CONTEXT.
// A missing (or empty) targetingKey is no error: [rollout.Decide] then
// matches only attribute rules and 100% steps, and everyone else gets the
// base stage with reason DEFAULT. Unknown fields, in the body and in the
// context, are ignored.
func readEvalContext(r *http.Request) (evalContext, *ofrepError) {
	if r.ContentLength > MaxOFREPBytes {
		return evalContext{}, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxOFREPBytes+1))
	if err != nil {
		return evalContext{}, &ofrepError{http.StatusBadRequest, ofrepParseError, "cannot read the request body"}
	}
	if len(body) > MaxOFREPBytes {
		return evalContext{}, tooLarge()
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return evalContext{}, nil
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return evalContext{}, &ofrepError{http.StatusBadRequest, ofrepParseError, "the body is not a JSON object like {\"context\": {…}}: " + jsonProblem(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return evalContext{}, &ofrepError{http.StatusBadRequest, ofrepParseError, "the body has data after its JSON object"}
	}
	raw := bytes.TrimSpace(req.Context)
	if len(raw) == 0 || string(raw) == "null" {
		return evalContext{}, nil
	}
	if raw[0] != '{' {
		return evalContext{}, &ofrepError{http.StatusBadRequest, ofrepInvalidContext, "context must be a JSON object"}
	}
	var m map[string]any
	dec = json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // integers beyond 2^53 keep every digit, as in Go providers
	if err := dec.Decode(&m); err != nil {
		return evalContext{}, &ofrepError{http.StatusBadRequest, ofrepParseError, "context: " + jsonProblem(err)}
	}
	var ec evalContext
	switch tk := m["targetingKey"].(type) {
	case nil:
	case string:
		ec.targetingKey = tk
	default:
		return evalContext{}, &ofrepError{http.StatusBadRequest, ofrepInvalidContext, "context.targetingKey must be a string"}
	}
	delete(m, "targetingKey")
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			m[k] = number(n)
		}
	}
	ec.attrs = rollout.StringAttrs(m)
	return ec, nil
}

func tooLarge() *ofrepError {
	return &ofrepError{http.StatusRequestEntityTooLarge, ofrepGeneral, "the request body is larger than " + strconv.Itoa(MaxOFREPBytes) + " bytes"}
}

// number converts a JSON number to the Go value an OpenFeature SDK would
// hold, so that [rollout.StringAttrs] formats it as it would in a Go
// provider: int64 or uint64 when it is an integer in range, else float64.
// A number out of float64's range is left out.
func number(n json.Number) any {
	if i, err := n.Int64(); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the input: syntax
// errors say where, type errors what was expected.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "invalid JSON at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		return "found a JSON " + typ.Value + " where an object belongs"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON ends early"
	}
	return "invalid JSON"
}

// bulkETag is the entity tag of a bulk evaluation: a hash of the flag
// table's version (which changes whenever any revision does) and of exactly
// what the results depend on, the targeting key and the attributes as
// matched. Two contexts that differ only in attribute order, or in
// attributes Parity ignores (lists, objects), get the same tag, as their
// answers are the same. Every collector with the same documents gives the
// same tag, so polling through a load balancer still gets 304s.
func bulkETag(version string, ec evalContext) string {
	h := sha256.New()
	var buf []byte
	field := func(s string) {
		buf = binary.AppendUvarint(buf[:0], uint64(len(s)))
		h.Write(buf)
		h.Write([]byte(s))
	}
	field("parity ofrep bulk v1") // change when the answer's format changes
	field(version)
	field(ec.targetingKey)
	keys := make([]string, 0, len(ec.attrs))
	for k := range ec.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k)
		field(ec.attrs[k])
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// etagMatches reports whether an If-None-Match header lists etag, compared
// weakly (a W/ prefix is ignored) as RFC 9110 asks for If-None-Match.
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == etag {
			return true
		}
	}
	return false
}

// credential returns the token a request presents, and whether it presents
// one: the Authorization: Bearer header, or on OFREP routes also the
// X-API-Key header (OpenFeature's OFREP providers offer both).
func credential(c echo.Context) (string, bool) {
	if tok, ok := bearer(c.Request()); ok {
		return tok, true
	}
	if strings.HasPrefix(c.Path(), pathOFREP) {
		if v := c.Request().Header.Values(headerAPIKey); len(v) > 0 {
			return strings.TrimSpace(v[0]), true
		}
	}
	return "", false
}
