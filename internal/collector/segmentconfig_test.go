package collector

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/testutil"
)

// TestSegmentConfigAPI: an experiment's segment definition is read and
// changed through the API (operator role, versioned, validated), and the
// running verifier splits the experiment's next pairs with the new one.
func TestSegmentConfigAPI(t *testing.T) {
	h := newRolloutHarness(t)
	// The first pair stores the verifier's defaults: country, plan.
	h.ingest("IN", 5, 0)
	code, body := h.do("GET", "/api/v1/experiments/ctl/segment-config", flagOperator, "")
	var v SegmentConfigView
	if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil || v.Version != 1 ||
		strings.Join(v.Attrs, ",") != "country,plan" || v.Cap != 100 || v.Author != "verifier" {
		t.Fatalf("GET segment-config: %d %s; want version 1, the verifier's defaults", code, body)
	}
	if code, body := h.do("GET", "/api/v1/experiments/nobody/segment-config", flagOperator, ""); code != http.StatusNotFound || !strings.Contains(body, "PUT one") {
		t.Errorf("GET for an experiment without one: %d %s", code, body)
	}

	for _, tt := range []struct {
		name, token, body string
		code              int
		want              string
	}{
		{"no token", "", `{"attrs":["country"],"cap":5,"reason":"x"}`, http.StatusUnauthorized, ""},
		{"ingest token", flagIngest, `{"attrs":["country"],"cap":5,"reason":"x"}`, http.StatusForbidden, ""},
		{"no reason", flagOperator, `{"attrs":["country"],"cap":5}`, http.StatusBadRequest, "reason"},
		{"cap zero", flagOperator, `{"attrs":["country"],"cap":0,"reason":"x"}`, http.StatusBadRequest, "cap"},
		{"bad attribute", flagOperator, `{"attrs":["a=b"],"cap":5,"reason":"x"}`, http.StatusBadRequest, "attrs[0]"},
		{"unknown field", flagOperator, `{"attrs":["a"],"cap":5,"reason":"x","segments":1}`, http.StatusBadRequest, "segments"},
	} {
		if code, body := h.do("PUT", "/api/v1/experiments/ctl/segment-config", tt.token, tt.body); code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want %d naming %q", tt.name, code, body, tt.code, tt.want)
		}
	}

	code, body = h.do("PUT", "/api/v1/experiments/ctl/segment-config", flagOperator, `{"attrs":[],"cap":5,"reason":"one segment is enough"}`)
	if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil || v.Version != 2 || len(v.Attrs) != 0 || v.Cap != 5 {
		t.Fatalf("PUT: %d %s; want version 2", code, body)
	}
	code, body = h.do("GET", "/api/v1/experiments/ctl/segment-config/history", flagOperator, "")
	var hist []SegmentConfigView
	if code != http.StatusOK || json.Unmarshal([]byte(body), &hist) != nil || len(hist) != 2 || hist[0].Reason != "one segment is enough" {
		t.Errorf("history: %d %s", code, body)
	}

	if code, body := h.do("GET", "/api/v1/experiments/ctl/segment-config/history?limit=many", flagOperator, ""); code != http.StatusBadRequest || !strings.Contains(body, "limit") {
		t.Errorf("history?limit=many: %d %s, want 400 naming limit", code, body)
	}

	// The verifier hears of the change and splits new pairs with it: all
	// of them in segment "all".
	testutil.Eventually(t, 20*time.Second, func() string {
		h.ingest("US", 1, 0)
		code, body := h.do("GET", "/api/v1/experiments/ctl/segments?window=1h", flagOperator, "")
		var sv SegmentsView
		if code != http.StatusOK || json.Unmarshal([]byte(body), &sv) != nil {
			return fmt.Sprintf("segments: %d %s", code, body)
		}
		for _, s := range sv.Segments {
			if s.Segment == "all" {
				return ""
			}
		}
		return "no pair in segment all yet: " + body
	})
}
