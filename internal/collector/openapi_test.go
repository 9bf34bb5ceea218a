package collector

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The OpenAPI document is checked in two ways: every route the collector
// registers under /api/ is documented (and nothing else is), and every
// documented GET route, called on a real collector, answers what the
// document says. The validator below covers the subset of OpenAPI 3.0's
// schema language docs/openapi.yaml uses, and refuses any other keyword so
// the document cannot silently outgrow it.

// openAPI is the part of an OpenAPI document the tests read.
type openAPI struct {
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Schemas   map[string]*schema  `json:"schemas"`
		Responses map[string]response `json:"responses"`
	} `json:"components"`
}

type operation struct {
	Responses map[string]response `json:"responses"`
}

type response struct {
	Ref     string `json:"$ref"`
	Content map[string]struct {
		Schema *schema `json:"schema"`
	} `json:"content"`
}

// schema is the subset of the OpenAPI 3.0 schema object the document uses.
type schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Nullable             bool               `json:"nullable"`
	Properties           map[string]*schema `json:"properties"`
	Required             []string           `json:"required"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Items                *schema            `json:"items"`
	Enum                 []any              `json:"enum"`
	Format               string             `json:"format"`
	Minimum              *float64           `json:"minimum"`
	Maximum              *float64           `json:"maximum"`
	MaxLength            *int               `json:"maxLength"`
	Default              any                `json:"default"`
	Description          string             `json:"description"`
}

// schemaKeywords are the keywords the validator knows.
var schemaKeywords = []string{"$ref", "type", "nullable", "properties", "required", "additionalProperties",
	"items", "enum", "format", "minimum", "maximum", "maxLength", "default", "description"}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	b, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	_ = json.Unmarshal(b, &raw)
	checkKeywords(t, raw, "")
	return doc
}

// checkKeywords refuses schema keywords the validator does not implement.
func checkKeywords(t *testing.T, v any, path string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if strings.HasSuffix(path, "/schema") || strings.Contains(path, "/schemas/") && strings.Count(path, "/") == 3 ||
			strings.HasSuffix(path, "/items") || strings.Contains(path, "/properties/") && !strings.HasSuffix(path, "/properties") ||
			strings.HasSuffix(path, "/additionalProperties") {
			for k := range x {
				if !slices.Contains(schemaKeywords, k) {
					t.Errorf("docs/openapi.yaml %s: keyword %q is not one the test's validator implements", path, k)
				}
			}
		}
		for k, e := range x {
			checkKeywords(t, e, path+"/"+k)
		}
	case []any:
		for _, e := range x {
			checkKeywords(t, e, path)
		}
	}
}

// resolve follows a schema's $ref.
func (d openAPI) resolve(s *schema) (*schema, error) {
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok || d.Components.Schemas[name] == nil {
			return nil, fmt.Errorf("unresolved $ref %q", s.Ref)
		}
		s = d.Components.Schemas[name]
	}
	return s, nil
}

// validate checks v (decoded with UseNumber) against s, returning every
// violation with its JSON path.
func (d openAPI) validate(s *schema, v any, path string) []string {
	s, err := d.resolve(s)
	if err != nil {
		return []string{path + ": " + err.Error()}
	}
	if s == nil {
		return nil
	}
	if v == nil {
		if s.Nullable || s.Type == "" {
			return nil
		}
		return []string{path + ": null, but the schema is not nullable"}
	}
	var errs []string
	if len(s.Enum) > 0 && !slices.ContainsFunc(s.Enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, v, s.Enum))
	}
	switch s.Type {
	case "":
		// any value
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T, want an object", path, v))
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required field %q is missing", path, r))
			}
		}
		var extra *schema
		closed := false
		if len(s.AdditionalProperties) > 0 {
			if string(s.AdditionalProperties) == "false" {
				closed = true
			} else if string(s.AdditionalProperties) != "true" {
				extra = &schema{}
				if err := json.Unmarshal(s.AdditionalProperties, extra); err != nil {
					return append(errs, path+": additionalProperties: "+err.Error())
				}
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch p, ok := s.Properties[k]; {
			case ok:
				errs = append(errs, d.validate(p, obj[k], path+"."+k)...)
			case extra != nil:
				errs = append(errs, d.validate(extra, obj[k], path+"."+k)...)
			case closed:
				errs = append(errs, fmt.Sprintf("%s: field %q is not documented in docs/openapi.yaml", path, k))
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T, want an array", path, v))
		}
		for i, e := range arr {
			errs = append(errs, d.validate(s.Items, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T, want a string", path, v))
		}
		if s.Format == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a date-time", path, str))
			}
		}
		if s.MaxLength != nil && len([]rune(str)) > *s.MaxLength {
			errs = append(errs, fmt.Sprintf("%s: longer than %d", path, *s.MaxLength))
		}
	case "integer", "number":
		n, ok := v.(json.Number)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T, want a %s", path, v, s.Type))
		}
		f, err := n.Float64()
		if err != nil {
			return append(errs, fmt.Sprintf("%s: %v", path, err))
		}
		if s.Type == "integer" && (f != math.Trunc(f) || strings.ContainsAny(n.String(), ".eE")) {
			errs = append(errs, fmt.Sprintf("%s: %s is not an integer", path, n))
		}
		if s.Minimum != nil && f < *s.Minimum || s.Maximum != nil && f > *s.Maximum {
			errs = append(errs, fmt.Sprintf("%s: %s is out of range", path, n))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want a boolean", path, v))
		}
	default:
		errs = append(errs, fmt.Sprintf("%s: the validator does not know type %q", path, s.Type))
	}
	return errs
}

// responseSchema returns the documented schema of an answer to method path
// with status code and content type, or an error when it is undocumented.
func (d openAPI) responseSchema(method, path string, code int, contentType string) (*schema, error) {
	op, ok := d.Paths[path][strings.ToLower(method)]
	if !ok {
		return nil, fmt.Errorf("%s %s is not documented", method, path)
	}
	r, ok := op.Responses[fmt.Sprint(code)]
	if !ok {
		if r, ok = op.Responses["default"]; !ok || code < 400 {
			return nil, fmt.Errorf("%s %s: status %d is not documented", method, path, code)
		}
	}
	if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
		r = d.Components.Responses[name]
	}
	mt, _, _ := strings.Cut(contentType, ";")
	c, ok := r.Content[strings.TrimSpace(mt)]
	if !ok {
		return nil, fmt.Errorf("%s %s %d: content type %q is not documented", method, path, code, mt)
	}
	return c.Schema, nil
}

// checkAnswer validates one real answer against the document.
func (d openAPI) checkAnswer(method, path string, resp *http.Response, body []byte) []string {
	s, err := d.responseSchema(method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	if err != nil {
		return []string{err.Error()}
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{fmt.Sprintf("%s %s: body %q: %v", method, path, body, err)}
	}
	return d.validate(s, v, "$")
}

// TestOpenAPIValidatorRefuses: the validator catches what it claims to (so
// a passing check of real answers means something).
func TestOpenAPIValidatorRefuses(t *testing.T) {
	doc := loadOpenAPI(t)
	rate := &schema{Ref: "#/components/schemas/Rate"}
	good := `{"divergent": 1, "pairs": 10, "rate": 0.1, "rate_low": 0.01, "rate_high": 0.4}`
	tests := []struct {
		body string
		want string // "" for valid
	}{
		{good, ""},
		{`{"divergent": 1, "pairs": 10, "rate": 0.1, "rate_low": 0.01}`, `required field "rate_high"`},
		{`{"divergent": 1.5, "pairs": 10, "rate": 0.1, "rate_low": 0.01, "rate_high": 0.4}`, "not an integer"},
		{`{"divergent": "1", "pairs": 10, "rate": 0.1, "rate_low": 0.01, "rate_high": 0.4}`, "want a integer"},
		{`{"divergent": 1, "pairs": 10, "rate": 0.1, "rate_low": 0.01, "rate_high": 0.4, "extra": 1}`, `field "extra" is not documented`},
		{`null`, "not nullable"},
	}
	for _, tt := range tests {
		dec := json.NewDecoder(strings.NewReader(tt.body))
		dec.UseNumber()
		var v any
		_ = dec.Decode(&v)
		errs := strings.Join(doc.validate(rate, v, "$"), "; ")
		if (tt.want == "") != (errs == "") || !strings.Contains(errs, tt.want) {
			t.Errorf("%s: %q, want %q", tt.body, errs, tt.want)
		}
	}
	var v any
	_ = json.Unmarshal([]byte(`{"kind": "guess", "since": "yesterday", "reason": ""}`), &v)
	errs := strings.Join(doc.validate(&schema{Ref: "#/components/schemas/Anchor"}, v, "$"), "; ")
	if !strings.Contains(errs, "not one of") || !strings.Contains(errs, "not a date-time") {
		t.Errorf("bad anchor: %q, want an enum and a date-time error", errs)
	}
}

// echoPath turns an Echo route ("/api/v1/experiments/:name") into an
// OpenAPI path ("/api/v1/experiments/{name}").
func echoPath(p string) string {
	return regexp.MustCompile(`:([a-z_]+)`).ReplaceAllString(p, "{$1}")
}

// TestOpenAPIDocumentsEveryRoute: every route under /api/ is documented with
// its method, every documented one is served, and the document's JSON is
// what GET /api/v1/openapi.json serves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	e, err := newEcho(&handlers{log: slog.New(slog.DiscardHandler), auth: newAuthn(authConfig{Anonymous: true}), ingest: &ingester{}})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/") || r.Method == "echo_route_not_found" {
			continue // pages, health, metrics and OFREP (OpenFeature's own protocol) are not the JSON API
		}
		key := r.Method + " " + echoPath(r.Path)
		served[key] = true
		if _, ok := doc.Paths[echoPath(r.Path)][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s is served but not documented in docs/openapi.yaml", key)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if key := strings.ToUpper(m) + " " + p; !served[key] {
				t.Errorf("%s is documented but not served", key)
			}
		}
	}
	code, body := get(t, e, "/api/v1/openapi.json")
	want, _ := openAPIDoc()
	if code != http.StatusOK || body != string(want) {
		t.Errorf("GET /api/v1/openapi.json: %d, %d bytes; want 200 and the document's %d bytes", code, len(body), len(want))
	}
}
