package collector

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestGateAnchors: every path to the public gate judges counts from the
// anchor its answer names — the request's since, a named analysis anchored
// at its first look, the experiment's rollout step — and with none never
// passes. Each (operation, segment) unit is judged on its own unless the
// request pools them.
func TestGateAnchors(t *testing.T) {
	h := newRolloutHarness(t)
	gate := func(query string) GateView {
		t.Helper()
		code, body := h.do("GET", "/api/v1/experiments/ctl/gate?max_rate=50%25&min_pairs=0&"+query, flagOperator, "")
		if code != http.StatusOK {
			t.Fatalf("gate?%s: %d %s", query, code, body)
		}
		var v GateView
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The first look of an analysis, before any pair, anchors it.
	first := gate("analysis=ci-1")
	if first.Verdict != "inconclusive" || !first.NoPairs || first.Anchor.Kind != "analysis" || first.Anchor.Analysis != "ci-1" {
		t.Fatalf("first look: %+v", first)
	}
	anchoredAt := first.Anchor.Since
	if anchoredAt.IsZero() || anchoredAt.After(time.Now()) || anchoredAt != anchoredAt.Truncate(time.Minute) {
		t.Fatalf("anchored at %v, want the minute of the first look", anchoredAt)
	}
	h.ingestOp("Get", "IN", 90, 0)  // a clean operation
	h.ingestOp("Put", "IN", 10, 10) // every pair of another diverges
	hourAgo := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

	tests := []struct {
		name, query    string
		verdict, kind  string
		since          time.Time
		reasonContains string
	}{
		{"since: the request's start", "since=" + url.QueryEscape(hourAgo.Format(time.RFC3339)), "fail", "since", hourAgo, ""},
		{"analysis: its first look, reused", "analysis=ci-1", "fail", "analysis", anchoredAt, ""},
		{"analysis, pooled operations", "analysis=ci-1&per_operation=false", "pass", "analysis", anchoredAt, ""},
		{"none: a window, never a pass", "per_operation=false", "inconclusive", "none", time.Time{}, "?analysis=NAME"},
		{"none: a window can still fail", "", "fail", "none", time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := gate(tt.query)
			if string(v.Verdict) != tt.verdict || v.Anchor.Kind != tt.kind || !strings.Contains(v.Reason, tt.reasonContains) {
				t.Errorf("verdict %s, anchor %+v (%s); want %s from %s", v.Verdict, v.Anchor, v.Reason, tt.verdict, tt.kind)
			}
			if !tt.since.IsZero() && (!v.Anchor.Since.Equal(tt.since) || !v.Since.Equal(tt.since)) {
				t.Errorf("counts from %v (anchor %v), want %v", v.Since, v.Anchor.Since, tt.since)
			}
			if tt.kind == "none" && !v.Anchor.Since.After(hourAgo.Add(-time.Minute)) {
				t.Errorf("the window starts at %v, want about an hour ago", v.Anchor.Since)
			}
		})
	}
	// Per operation, the failing unit is Put's.
	if v := gate("analysis=ci-1"); !strings.Contains(v.Reason+segmentsOf(v), "Put country=IN") {
		t.Errorf("the per-operation verdict does not name the Put unit: %s %s", v.Reason, segmentsOf(v))
	}
	// A later look anchors a new name at its own first look.
	if v := gate("analysis=ci-2"); v.Anchor.Since.Before(anchoredAt) || v.Anchor.Analysis != "ci-2" {
		t.Errorf("a second analysis: %+v", v.Anchor)
	}
	// Flagger: the payload's checksum names the analysis.
	code, body := h.do("POST", "/api/v1/experiments/ctl/gate/confirm?max_rate=50%25&min_pairs=0", flagOperator,
		`{"name": "orders", "namespace": "shop", "phase": "Progressing", "checksum": "c0ffee"}`)
	var fv GateView
	_ = json.Unmarshal([]byte(body), &fv)
	if code != http.StatusPreconditionFailed || fv.Anchor.Kind != "analysis" || fv.Anchor.Analysis != "flagger/shop/orders/c0ffee" {
		t.Errorf("Flagger confirm: %d anchor %+v", code, fv.Anchor)
	}
	if code, body := h.do("GET", "/api/v1/experiments/ctl/gate?analysis=a%20b", flagOperator, ""); code != http.StatusBadRequest || !strings.Contains(body, "parameter analysis") {
		t.Errorf("a bad analysis name: %d %s", code, body)
	}

	// With a rollout, the gate judges the current step as the controller
	// does, from the step's start, whatever analysis is named.
	if code, body := h.do("PUT", "/api/v1/experiments/ctl/rollout", flagOperator, strings.NewReplacer("%s", "anchors", `"auto_promote": true`, `"auto_promote": false`, `, "gate": "none"`, "").Replace(ctlPlan)); code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, body)
	}
	if code, body := h.do("POST", "/api/v1/experiments/ctl/rollout/promote", flagOperator, `{"reason": "go"}`); code != http.StatusOK {
		t.Fatalf("promote: %d %s", code, body)
	}
	rv := h.waitSettled()
	v := gate("analysis=ci-1")
	if v.Anchor.Kind != "rollout" || v.Anchor.Since.Before(rv.EnteredAt) || rv.Gate == nil || !v.Anchor.Since.Equal(rv.Gate.Anchor.Since) {
		t.Errorf("with a rollout: anchor %+v, step entered at %v, controller's gate %+v", v.Anchor, rv.EnteredAt, rv.Gate)
	}
	if v.Verdict != "inconclusive" {
		t.Errorf("no pair since the step settled: %s %s", v.Verdict, v.Reason)
	}
	if v := gate("since=" + url.QueryEscape(hourAgo.Format(time.RFC3339))); v.Anchor.Kind != "since" || v.Verdict != "fail" {
		t.Errorf("an explicit since still wins over the rollout: %+v %s", v.Anchor, v.Verdict)
	}
}

// segmentsOf lists a verdict's units and their verdicts.
func segmentsOf(v GateView) string {
	var b strings.Builder
	for _, s := range v.Segments {
		b.WriteString(s.Segment + "=" + string(s.Verdict) + " ")
	}
	return b.String()
}
