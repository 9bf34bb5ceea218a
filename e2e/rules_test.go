package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

const operatorToken = "operator-token-0123456789"

func send(t *testing.T, method, url, token string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// orderPair returns a pair whose candidate differs from control at
// updated_at always and at total when priceOff is set.
func orderPair(experiment, operation string, i int, priceOff bool, now time.Time) *envelope.Pair {
	total := 2549
	if priceOff {
		total = 2548
	}
	ctl := fmt.Sprintf(`{"id":%d,"total":2549,"updated_at":"2026-11-21T10:00:00Z"}`, i)
	cand := fmt.Sprintf(`{"id":%d,"total":%d,"updated_at":"2026-11-21T10:00:%02dZ"}`, i, total, 1+i%50)
	return &envelope.Pair{
		ID: fmt.Sprintf("%s-%s-%d-%d", experiment, operation, now.UnixNano(), i), Experiment: experiment, Operation: operation,
		Kind: envelope.KindRead, Time: now, Stage: envelope.StageShadow,
		User:    envelope.User{Key: "u", Attrs: map[string]string{"country": "IN", "plan": "pro"}},
		Control: envelope.Observation{Value: json.RawMessage(ctl)}, Candidate: envelope.Observation{Value: json.RawMessage(cand)},
	}
}

func operationCounts(t *testing.T, app *collector.App, experiment, operation string) counts {
	t.Helper()
	var r segmentsResponse
	getJSON(t, app.URL()+"/api/v1/experiments/"+experiment+"/segments?window=all&operation="+operation, &r)
	var c counts
	for _, s := range r.Segments {
		c.pairs += s.Divergence.Pairs
		c.divergent += s.Divergence.Divergent
	}
	return c
}

// TestRulesChangeVerdictsOnRunningVerifiers is the diff engine's acceptance
// test: noise is detected and proposed, a person accepts it through the API,
// and the running verifiers judge new pairs under the new rules within
// seconds; a rule saved with PUT does the same.
func TestRulesChangeVerdictsOnRunningVerifiers(t *testing.T) {
	const experiment = "e2e-rules"
	ns := testutil.RunJetStream(t)
	app, err := collector.Start(context.Background(), collector.Options{
		Addr: "127.0.0.1:0", DatabaseURL: testutil.FreshDatabase(t), NATSURL: ns.ClientURL(), Workers: 2,
		OperatorTokens: []string{operatorToken},
		Verifier:       verifier.Options{FlushInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	pub, err := publish.New(testutil.Connect(t, ns), publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	now := time.Now().UTC()

	// 250 pairs, all differing at updated_at, one in ten also at total.
	for i := range 250 {
		pub.Publish(orderPair(experiment, "GetOrder", i, i%10 == 0, now))
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		if c := operationCounts(t, app, experiment, "GetOrder"); c != (counts{250, 250}) {
			return fmt.Sprintf("GetOrder counts %+v, want 250 pairs all divergent", c)
		}
		return ""
	})

	// Signatures name the places: two groups, 225 and 25 pairs.
	var sigs struct {
		Signatures []collector.SignatureView `json:"signatures"`
	}
	getJSON(t, app.URL()+"/api/v1/experiments/"+experiment+"/signatures?window=all", &sigs)
	if len(sigs.Signatures) != 2 || sigs.Signatures[0].Count != 225 || sigs.Signatures[1].Count != 25 ||
		!strings.Contains(sigs.Signatures[0].Description, "updated_at") {
		t.Fatalf("signatures %+v, want updated_at ×225 then updated_at+total ×25", sigs.Signatures)
	}

	// Noise: updated_at differs in every pair and is proposed; total is not.
	var noise struct {
		Proposals []collector.NoiseView `json:"proposals"`
	}
	getJSON(t, app.URL()+"/api/v1/experiments/"+experiment+"/noise?window=all", &noise)
	if len(noise.Proposals) != 1 || noise.Proposals[0].Pattern != "updated_at" || noise.Proposals[0].Pairs != 250 {
		t.Fatalf("noise proposals %+v, want only updated_at over 250 pairs", noise.Proposals)
	}

	// Accepting needs an operator token.
	accept := collector.NoiseAccept{Operation: "GetOrder", Pattern: "updated_at", Author: "release-owner"}
	url := app.URL() + "/api/v1/experiments/" + experiment + "/noise/accept"
	if code, _ := send(t, http.MethodPost, url, "", accept); code != http.StatusUnauthorized {
		t.Errorf("accept without a token: %d, want 401", code)
	}
	if code, body := send(t, http.MethodPost, url, operatorToken, accept); code != http.StatusOK || !strings.Contains(body, `"version":1`) {
		t.Fatalf("accept: %d %s", code, body)
	}

	// New pairs are judged under version 1 within seconds: updated_at alone
	// no longer diverges. Probes go to fresh operations so each is judged
	// after the rule change is visible.
	probe := func(op string, priceOff bool) func() string {
		n := 0
		return func() string {
			n++
			operation := fmt.Sprintf("%s%d", op, n)
			pub.Publish(orderPair(experiment, operation, n, priceOff, time.Now().UTC()))
			var c counts
			testutil.Eventually(t, 10*time.Second, func() string {
				if c = operationCounts(t, app, experiment, operation); c.pairs == 0 {
					return "probe not counted yet"
				}
				return ""
			})
			if c.divergent != 0 {
				return "probe " + operation + " still judged divergent"
			}
			return ""
		}
	}
	// The accepted rule is per operation (GetOrder); probes use other names,
	// so save a default rule the way a person would with PUT.
	rules := map[string]any{"default": map[string]any{"ignore": []string{"updated_at"}}}
	rurl := app.URL() + "/api/v1/experiments/" + experiment + "/rules"
	if code, body := send(t, http.MethodPut, rurl, "", map[string]any{"rules": rules}); code != http.StatusUnauthorized {
		t.Errorf("PUT rules without a token: %d %s", code, body)
	}
	bad := map[string]any{"rules": map[string]any{"default": map[string]any{"ignore": []string{"items[3].price"}}}}
	if code, body := send(t, http.MethodPut, rurl, operatorToken, bad); code != http.StatusBadRequest || !strings.Contains(body, "ignore[0]") {
		t.Errorf("PUT invalid rules: %d %s, want 400 naming ignore[0]", code, body)
	}
	if code, body := send(t, http.MethodPut, rurl, operatorToken, map[string]any{"rules": rules, "reason": "each store stamps its own time"}); code != http.StatusOK || !strings.Contains(body, `"version":2`) {
		t.Fatalf("PUT rules: %d %s", code, body)
	}
	testutil.Eventually(t, 20*time.Second, probe("Probe", false))

	// A real difference still diverges under the new rules, and the sample
	// records the version it was judged under.
	pub.Publish(orderPair(experiment, "Final", 1, true, time.Now().UTC()))
	testutil.Eventually(t, 10*time.Second, func() string {
		if c := operationCounts(t, app, experiment, "Final"); c != (counts{1, 1}) {
			return fmt.Sprintf("Final counts %+v, want 1 divergent", c)
		}
		return ""
	})
	var samples struct {
		Samples []struct {
			RulesVersion int64    `json:"rules_version"`
			Paths        []string `json:"paths"`
		} `json:"samples"`
	}
	getJSON(t, app.URL()+"/api/v1/experiments/"+experiment+"/samples?operation=Final", &samples)
	if len(samples.Samples) != 1 || samples.Samples[0].RulesVersion != 2 || fmt.Sprint(samples.Samples[0].Paths) != "[total]" {
		t.Errorf("Final sample %+v, want rules version 2 and only total differing", samples.Samples)
	}
	var hist struct {
		Versions []collector.RulesView `json:"versions"`
	}
	getJSON(t, rurl+"/history", &hist)
	if len(hist.Versions) != 2 || hist.Versions[0].Reason != "each store stamps its own time" || !strings.Contains(hist.Versions[1].Reason, "noise") || hist.Versions[1].Author != "operator-token[0] for release-owner" {
		t.Errorf("rules history %+v", hist.Versions)
	}
}

// TestAANoiseReportedApart: A/A pairs measure the comparison's own noise and
// are shown beside the real rate, never mixed into it.
func TestAANoiseReportedApart(t *testing.T) {
	const experiment = "e2e-aa"
	app, nc := startSystem(t, "ingest-token-0123456789")
	pub, _ := publish.New(nc, publish.Options{})
	now := time.Now().UTC()
	for i := range 40 {
		p, _ := makePair(experiment, i*4+1, now) // segment US/free: never divergent
		pub.Publish(p)
		aa := orderPair(experiment, "GetOrder", i, false, now)
		aa.Mode = envelope.ModeAA
		aa.User.Attrs = map[string]string{"country": "US", "plan": "free"}
		if i%4 != 0 { // three in four A/A reads agree
			aa.Candidate.Value = aa.Control.Value
		}
		pub.Publish(aa)
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Segments []collector.SegmentView `json:"segments"`
	}
	testutil.Eventually(t, 20*time.Second, func() string {
		getJSON(t, app.URL()+"/api/v1/experiments/"+experiment+"/segments?window=all", &r)
		if len(r.Segments) != 1 || r.Segments[0].Noise == nil || r.Segments[0].Noise.Total != 40 {
			return fmt.Sprintf("segments %+v", r.Segments)
		}
		return ""
	})
	s := r.Segments[0]
	if s.Rate.Total != 40 || s.Rate.Hits != 0 || s.Noise.Hits != 10 {
		t.Errorf("real %+v, noise %+v; want 40 pairs 0 divergent, and 10 of 40 A/A divergent", s.Rate, *s.Noise)
	}
}
