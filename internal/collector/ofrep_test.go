package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/parityhq/parity/internal/auth"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/rollout"
)

// ofrepFlag is the flag key of the rollout the OFREP tests serve.
const ofrepFlag = "orders-db.stage"

// ofrepPlan has a stage for every reason: 30% of users get shadow (SPLIT),
// India and tier-2 users shadow by rule and the testing group live
// (TARGETING_MATCH); everyone else keeps the base, dualwrite (DEFAULT).
func ofrepPlan(t *testing.T) rollout.Plan {
	t.Helper()
	p := rollout.Plan{
		Experiment: "orders-db", Base: envelope.StageDualWrite,
		Steps: []rollout.Step{
			{Name: "30%", Stage: envelope.StageShadow, Audience: rollout.Audience{Percent: 30}},
			{Name: "India and tier 2", Stage: envelope.StageShadow, Audience: rollout.Audience{Rules: []rollout.Rule{
				{Attribute: "country", In: []string{"IN"}}, {Attribute: "tier", In: []string{"2"}},
			}}},
			{Name: "testing group", Stage: envelope.StageLive, Audience: rollout.Audience{Users: []string{"123", "456"}}},
		},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// ofrepDoc is the document of ofrepFlag at step with revision.
func ofrepDoc(t *testing.T, step int, revision int64) rollout.Document {
	t.Helper()
	d := rollout.Document{Version: rollout.DocumentVersion, Flag: ofrepFlag, Plan: ofrepPlan(t), State: rollout.State{Step: step}, Status: rollout.StatusActive,
		Revision: revision, UpdatedAt: time.Now().UTC()}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	return d
}

// keyInBucket returns a targeting key whose percentage bucket in experiment
// is (in true) or is not (in false) below percent.
func keyInBucket(t *testing.T, experiment string, percent float64, in bool) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("user-%d", i)
		if rollout.InPercent(rollout.Bucket(experiment, k), percent) == in {
			return k
		}
	}
	t.Fatal("no such key")
	return ""
}

// ofrepServer is a collector over no database (OFREP needs none), with flag
// tokens of every role, serving over real HTTP.
type ofrepServer struct {
	url string
	h   *handlers
	log *syncBuffer
}

func newOFREPServer(t *testing.T, anonymousViewers bool) *ofrepServer {
	t.Helper()
	s := &ofrepServer{log: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.h = &handlers{log: log, auth: newAuthn(authConfig{
		Static:    map[auth.Role][]string{auth.RoleViewer: {flagViewer}, auth.RoleOperator: {flagOperator}, auth.RoleIngest: {flagIngest}},
		Anonymous: anonymousViewers, Log: log,
	})}
	e, err := newEcho(s.h)
	if err != nil {
		t.Fatal(err)
	}
	e.Logger.SetOutput(s.log)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// ofrepClient is an OpenFeature client, on an API of its own, whose provider
// is OpenFeature's OFREP provider for Go pointed at base.
func ofrepClient(t *testing.T, base string, opts ...ofrep.Option) *openfeature.Client {
	t.Helper()
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(t.Context(), ofrep.NewProvider(base, opts...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	return api.NewClient()
}

// TestOFREPProvider: OpenFeature's own OFREP provider gets from the
// collector exactly what rollout.Decide says, for every kind of match; an
// unknown flag gives the default with FLAG_NOT_FOUND; a new revision is
// seen on the next evaluation.
func TestOFREPProvider(t *testing.T) {
	s := newOFREPServer(t, false)
	s.h.flags.Set([]rollout.Document{ofrepDoc(t, 3, 1)})
	client := ofrepClient(t, s.url, ofrep.WithBearerToken(flagIngest))
	plan := ofrepPlan(t)
	split, rest := keyInBucket(t, plan.Experiment, 30, true), keyInBucket(t, plan.Experiment, 30, false)

	tests := []struct {
		name         string
		targetingKey string
		attrs        map[string]any
		// what rollout.Decide must say, so that every kind of match is covered
		wantStage  envelope.Stage
		wantReason string
		wantDetail string
	}{
		{"testing group", "123", nil, envelope.StageLive, rollout.ReasonTargetingMatch, "TARGETING_MATCH steps[2] user"},
		{"testing group, also in India", "456", map[string]any{"country": "IN"}, envelope.StageLive, rollout.ReasonTargetingMatch, "TARGETING_MATCH steps[2] user"},
		{"rule on a string", rest, map[string]any{"country": "IN"}, envelope.StageShadow, rollout.ReasonTargetingMatch, "TARGETING_MATCH steps[1] rule country"},
		{"rule on a number", rest, map[string]any{"tier": 2}, envelope.StageShadow, rollout.ReasonTargetingMatch, "TARGETING_MATCH steps[1] rule tier"},
		{"rule, no targeting key", "", map[string]any{"country": "IN"}, envelope.StageShadow, rollout.ReasonTargetingMatch, "TARGETING_MATCH steps[1] rule country"},
		{"percentage", split, map[string]any{"country": "US"}, envelope.StageShadow, rollout.ReasonSplit, "SPLIT steps[0] percent"},
		{"default", rest, map[string]any{"country": "US", "tier": 3, "beta": true, "tags": []any{"IN"}}, envelope.StageDualWrite, rollout.ReasonDefault, "DEFAULT base"},
		{"default, no targeting key", "", nil, envelope.StageDualWrite, rollout.ReasonDefault, "DEFAULT base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := rollout.Decide(plan, rollout.State{Step: 3}, tt.targetingKey, rollout.StringAttrs(tt.attrs))
			if want.Stage != tt.wantStage || want.Reason != tt.wantReason || want.String() != tt.wantDetail {
				t.Fatalf("the case is wrong: rollout.Decide says %s %s", want.Stage, want)
			}
			got, err := client.StringValueDetails(t.Context(), ofrepFlag, "fallback", openfeature.NewEvaluationContext(tt.targetingKey, tt.attrs))
			if err != nil {
				t.Fatal(err)
			}
			if got.Value != string(want.Stage) || string(got.Reason) != want.Reason || got.Variant != string(want.Stage) {
				t.Errorf("got %q reason %s variant %q, want %q reason %s", got.Value, got.Reason, got.Variant, want.Stage, want.Reason)
			}
			wantMeta := openfeature.FlagMetadata{"revision": float64(1), "step": float64(3), "matched_step": float64(want.Step),
				"status": rollout.StatusActive, "experiment": plan.Experiment, "detail": want.String()}
			if fmt.Sprint(got.FlagMetadata) != fmt.Sprint(wantMeta) {
				t.Errorf("metadata %v, want %v", got.FlagMetadata, wantMeta)
			}
		})
	}

	t.Run("unknown flag", func(t *testing.T) {
		got, err := client.StringValueDetails(t.Context(), "no-such-flag", "fallback", openfeature.NewEvaluationContext("123", nil))
		if err == nil || got.Value != "fallback" || got.ErrorCode != openfeature.FlagNotFoundCode || got.Reason != openfeature.ErrorReason {
			t.Errorf("got %q %s %s (%v), want the default with FLAG_NOT_FOUND", got.Value, got.Reason, got.ErrorCode, err)
		}
	})

	t.Run("new revision", func(t *testing.T) {
		evalCtx := openfeature.NewEvaluationContext("123", nil)
		if v := client.String(t.Context(), ofrepFlag, "fallback", evalCtx); v != string(envelope.StageLive) {
			t.Fatalf("before: %q, want live", v)
		}
		s.h.flags.Set([]rollout.Document{ofrepDoc(t, 0, 2)}) // rolled back to the base
		got, err := client.StringValueDetails(t.Context(), ofrepFlag, "fallback", evalCtx)
		if err != nil {
			t.Fatal(err)
		}
		if rev := got.FlagMetadata["revision"]; got.Value != string(envelope.StageDualWrite) || got.Reason != openfeature.DefaultReason || rev != float64(2) {
			t.Errorf("after: %q %s revision %v, want dualwrite DEFAULT revision 2", got.Value, got.Reason, rev)
		}
	})
}

// ofrepPost sends an OFREP request and decodes its JSON answer (nil for an
// empty body).
func ofrepPost(t *testing.T, url, token, body string, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	resp, b := call(t, nil, "POST", url, token, body, header...)
	if b == "" {
		return resp, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		t.Fatalf("%s answered %d with no JSON object: %s", url, resp.StatusCode, b)
	}
	return resp, m
}

// TestOFREPBulkETag: bulk evaluation answers every flag as rollout.Decide
// does, with an ETag that gives 304 while nothing changes, and changes with
// any revision and with the context.
func TestOFREPBulkETag(t *testing.T) {
	s := newOFREPServer(t, false)
	billing := rollout.Document{Version: rollout.DocumentVersion, Flag: "billing-db", Plan: rollout.Plan{Experiment: "billing", Base: envelope.StageOff,
		Steps: []rollout.Step{{Stage: envelope.StageDualWrite, Audience: rollout.Audience{Rules: []rollout.Rule{{Attribute: "country", In: []string{"IN"}}}}}}},
		State: rollout.State{Step: 1}, Status: rollout.StatusPaused, Revision: 4}
	docs := []rollout.Document{ofrepDoc(t, 3, 1), billing}
	s.h.flags.Set(docs)
	url := s.url + "/ofrep/v1/evaluate/flags"
	ctxA := `{"context": {"targetingKey": "123", "country": "IN", "tier": 2}}`

	resp, body := ofrepPost(t, url, flagIngest, ctxA)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Fatalf("bulk: %d ETag %q, want 200 with a quoted ETag; %v", resp.StatusCode, etag, body)
	}
	var got ofrepBulk
	b, _ := json.Marshal(body)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var want []ofrepSuccess
	for _, d := range []rollout.Document{billing, docs[0]} { // by flag key
		dec := rollout.Decide(d.Plan, d.State, "123", map[string]string{"country": "IN", "tier": "2"})
		want = append(want, ofrepSuccess{Key: d.Flag, Value: string(dec.Stage), Reason: dec.Reason, Variant: string(dec.Stage),
			Metadata: ofrepMetadata{Revision: d.Revision, Step: d.State.Step, MatchedStep: dec.Step, Status: d.Status,
				Experiment: d.Plan.Experiment, Detail: dec.String()}})
	}
	if !slices.Equal(got.Flags, want) {
		t.Errorf("bulk flags\n got %+v\nwant %+v", got.Flags, want)
	}

	// bulk sends body with If-None-Match and returns whether it got 304,
	// and the ETag.
	bulk := func(t *testing.T, body, ifNoneMatch string) (bool, string) {
		t.Helper()
		resp, raw := call(t, nil, "POST", url, flagIngest, body, "If-None-Match", ifNoneMatch)
		switch resp.StatusCode {
		case http.StatusNotModified:
			if raw != "" {
				t.Errorf("304 with a body: %s", raw)
			}
			return true, resp.Header.Get("ETag")
		case http.StatusOK:
			return false, resp.Header.Get("ETag")
		}
		t.Fatalf("If-None-Match: %d %s", resp.StatusCode, raw)
		return false, ""
	}
	for _, tt := range []struct {
		name, body, ifNoneMatch string
		want304, sameETag       bool
	}{
		{"same request", ctxA, etag, true, true},
		{"weak and listed", ctxA, `"other", W/` + etag, true, true},
		{"attributes reordered, an ignored one added", `{"context": {"tier": 2, "ignored": [1, 2], "country": "IN", "targetingKey": "123"}, "extra": true}`, etag, true, true},
		{"another ETag", ctxA, `"something-else"`, false, true},
		{"another targeting key", `{"context": {"targetingKey": "124", "country": "IN", "tier": 2}}`, etag, false, false},
		{"another attribute value", `{"context": {"targetingKey": "123", "country": "US", "tier": 2}}`, etag, false, false},
		{"a number as a string", `{"context": {"targetingKey": "123", "country": "IN", "tier": "2"}}`, etag, true, true},
		{"no context", ``, etag, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got304, got := bulk(t, tt.body, tt.ifNoneMatch)
			if got304 != tt.want304 || (got == etag) != tt.sameETag {
				t.Errorf("304 %v with ETag %s, want 304 %v and the same ETag (%s) %v", got304, got, tt.want304, etag, tt.sameETag)
			}
		})
	}

	t.Run("same revisions again", func(t *testing.T) {
		s.h.flags.Set([]rollout.Document{billing, ofrepDoc(t, 3, 1)}) // as another collector of the cluster would hold them
		if got304, got := bulk(t, ctxA, etag); !got304 || got != etag {
			t.Errorf("ETag %s, want %s: no revision changed", got, etag)
		}
	})
	t.Run("new revision", func(t *testing.T) {
		resumed := billing
		resumed.Status, resumed.Revision = rollout.StatusActive, 5
		s.h.flags.Put(resumed)
		if got304, got := bulk(t, ctxA, etag); got304 || got == etag || got == "" {
			t.Errorf("304 %v with ETag %s after a revision changed, want 200 with a new ETag", got304, got)
		}
	})
}

// TestOFREPErrors: bad bodies answer 400 in OFREP's shape, with the error
// code a provider understands and details that never quote the context; an
// unknown flag 404 FLAG_NOT_FOUND; a body over MaxOFREPBytes 413; what is
// merely unusual is evaluated.
func TestOFREPErrors(t *testing.T) {
	s := newOFREPServer(t, false)
	s.h.flags.Set([]rollout.Document{ofrepDoc(t, 3, 1)})
	const secret = "jane@example.com"
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"not JSON", `targetingKey=` + secret, 400, ofrepParseError},
		{"broken JSON", `{"context": {"email": "` + secret + `" oops}}`, 400, ofrepParseError},
		{"cut short", `{"context": {"email": "` + secret + `"`, 400, ofrepParseError},
		{"body an array", `["` + secret + `"]`, 400, ofrepParseError},
		{"body a string", `"` + secret + `"`, 400, ofrepParseError},
		{"data after the object", `{"context": {}} {"email": "` + secret + `"}`, 400, ofrepParseError},
		{"context a string", `{"context": "` + secret + `"}`, 400, ofrepInvalidContext},
		{"context an array", `{"context": ["` + secret + `"]}`, 400, ofrepInvalidContext},
		{"targetingKey a number", `{"context": {"targetingKey": 12345}}`, 400, ofrepInvalidContext},
		{"targetingKey an object", `{"context": {"targetingKey": {"email": "` + secret + `"}}}`, 400, ofrepInvalidContext},
		{"too large", `{"context": {"targetingKey": "u1", "blob": "` + strings.Repeat("x", MaxOFREPBytes) + `"}}`, 413, ofrepGeneral},
		{"empty body", ``, 200, ""},
		{"empty object", `{}`, 200, ""},
		{"null context", `{"context": null}`, 200, ""},
		{"null targetingKey", `{"context": {"targetingKey": null, "country": "IN"}}`, 200, ""},
		{"unknown fields", `{"context": {"targetingKey": "u1", "nested": {"a": [1, {"b": null}]}, "n": 1e400}, "flags": ["x"]}`, 200, ""},
	}
	for _, tt := range tests {
		for _, bulk := range []bool{false, true} {
			target, wantKeys := s.url+"/ofrep/v1/evaluate/flags/"+ofrepFlag, []string{"errorCode", "errorDetails", "key"}
			if bulk {
				target, wantKeys = s.url+"/ofrep/v1/evaluate/flags", []string{"errorCode", "errorDetails"}
			}
			t.Run(fmt.Sprintf("%s/bulk=%v", tt.name, bulk), func(t *testing.T) {
				resp, body := ofrepPost(t, target, flagViewer, tt.body)
				if resp.StatusCode != tt.status {
					t.Fatalf("%d, want %d; %v", resp.StatusCode, tt.status, body)
				}
				if tt.status == http.StatusOK {
					return
				}
				if keys := slices.Sorted(maps.Keys(body)); !slices.Equal(keys, wantKeys) {
					t.Errorf("fields %v, want %v: %v", keys, wantKeys, body)
				}
				if body["errorCode"] != tt.code || !bulk && body["key"] != ofrepFlag {
					t.Errorf("%v, want errorCode %s", body, tt.code)
				}
				if d, _ := body["errorDetails"].(string); d == "" || strings.Contains(d, secret) {
					t.Errorf("errorDetails %q: empty, or quoting the context", d)
				}
			})
		}
	}

	for _, key := range []string{"no-such-flag", "orders-db", "Orders-db.stage"} {
		resp, body := ofrepPost(t, s.url+"/ofrep/v1/evaluate/flags/"+key, flagViewer, `{"context": {"targetingKey": "u1"}}`)
		if resp.StatusCode != http.StatusNotFound || body["key"] != key || body["errorCode"] != ofrepFlagNotFound || body["errorDetails"] == "" {
			t.Errorf("flag %q: %d %v, want 404 FLAG_NOT_FOUND with the key", key, resp.StatusCode, body)
		}
	}
}

// TestOFREPAccess: every role may evaluate flags, with a bearer token or an
// X-API-Key; without credentials a collector that is reachable from other
// hosts answers 401, one that allows anonymous viewers (loopback) evaluates.
func TestOFREPAccess(t *testing.T) {
	open, _ := (&Options{Addr: "10.0.0.5:8080", AnonymousViewers: AnonymousViewersAuto}).anonymousViewers()
	if open {
		t.Fatal("a non-loopback collector allows anonymous viewers")
	}
	s := newSecured(t, open)
	s.h.flags.Set([]rollout.Document{ofrepDoc(t, 3, 1)})
	requests := []struct{ name, method, path, body string }{
		{"single", "POST", "/ofrep/v1/evaluate/flags/" + ofrepFlag, `{"context": {"targetingKey": "123"}}`},
		{"bulk", "POST", "/ofrep/v1/evaluate/flags", `{"context": {"targetingKey": "123"}}`},
		{"configuration", "GET", "/ofrep/v1/configuration", ""},
	}
	for _, r := range requests {
		t.Run(r.name, func(t *testing.T) {
			if resp, body := call(t, nil, r.method, s.url+r.path, "", r.body); resp.StatusCode != http.StatusUnauthorized ||
				!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no token: %d %s, want 401 with a Bearer challenge", resp.StatusCode, body)
			}
			for _, tok := range []string{"pty_" + strings.Repeat("x", 43), "not-a-token-at-all-0123"} {
				if resp, _ := call(t, nil, r.method, s.url+r.path, tok, r.body); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("wrong token: %d, want 401", resp.StatusCode)
				}
				if resp, _ := call(t, nil, r.method, s.url+r.path, "", r.body, headerAPIKey, tok); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("wrong X-API-Key: %d, want 401", resp.StatusCode)
				}
			}
			for who, tok := range map[string]string{
				"database viewer": s.viewer, "database operator": s.operator, "database ingest": s.ingest,
				"flag viewer": flagViewer, "flag operator": flagOperator, "flag ingest": flagIngest,
			} {
				if resp, body := call(t, nil, r.method, s.url+r.path, tok, r.body); resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d %s, want 200", who, resp.StatusCode, body)
				}
				if resp, body := call(t, nil, r.method, s.url+r.path, "", r.body, headerAPIKey, tok); resp.StatusCode != http.StatusOK {
					t.Errorf("%s as X-API-Key: %d %s, want 200", who, resp.StatusCode, body)
				}
			}
		})
	}
	t.Run("X-API-Key only on OFREP", func(t *testing.T) {
		if resp, _ := call(t, nil, "GET", s.url+"/api/v1/experiments", "", "", headerAPIKey, s.viewer); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/experiments with X-API-Key: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("providers", func(t *testing.T) {
		for name, opt := range map[string]ofrep.Option{"bearer": ofrep.WithBearerToken(s.ingest), "api key": ofrep.WithApiKeyAuth(s.ingest)} {
			c := ofrepClient(t, s.url, opt)
			if got, err := c.StringValueDetails(t.Context(), ofrepFlag, "fallback", openfeature.NewEvaluationContext("123", nil)); err != nil || got.Value != string(envelope.StageLive) {
				t.Errorf("%s: %q %v, want live", name, got.Value, err)
			}
		}
		c := ofrepClient(t, s.url)
		if got, _ := c.StringValueDetails(t.Context(), ofrepFlag, "fallback", openfeature.NewEvaluationContext("123", nil)); got.Value != "fallback" || got.ErrorCode != openfeature.GeneralCode {
			t.Errorf("no token: %q %s, want the default with GENERAL", got.Value, got.ErrorCode)
		}
	})

	t.Run("anonymous viewers", func(t *testing.T) {
		open, _ := (&Options{Addr: "127.0.0.1:8080", AnonymousViewers: AnonymousViewersAuto}).anonymousViewers()
		a := newOFREPServer(t, open)
		a.h.flags.Set([]rollout.Document{ofrepDoc(t, 3, 1)})
		for _, r := range requests {
			if resp, body := call(t, nil, r.method, a.url+r.path, "", r.body); resp.StatusCode != http.StatusOK {
				t.Errorf("%s without a token on loopback: %d %s, want 200", r.name, resp.StatusCode, body)
			}
		}
		if !strings.Contains(a.log.String(), "principal=anonymous") {
			t.Errorf("the request log does not say the reader was anonymous")
		}
	})
}

// TestOFREPConfiguration: the configuration extension advertises polling
// and answers 304 to its own ETag.
func TestOFREPConfiguration(t *testing.T) {
	s := newOFREPServer(t, false)
	resp, body := call(t, nil, "GET", s.url+"/ofrep/v1/configuration", flagIngest, "")
	var cfg struct {
		Name         string `json:"name"`
		Capabilities struct {
			CacheInvalidation struct {
				Polling struct {
					Enabled              bool `json:"enabled"`
					MinPollingIntervalMs int  `json:"minPollingIntervalMs"`
				} `json:"polling"`
			} `json:"cacheInvalidation"`
		} `json:"capabilities"`
	}
	if err := json.Unmarshal([]byte(body), &cfg); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s (%v)", resp.StatusCode, body, err)
	}
	if p := cfg.Capabilities.CacheInvalidation.Polling; cfg.Name != "parity" || !p.Enabled || p.MinPollingIntervalMs != ofrepMinPollingIntervalMs {
		t.Errorf("configuration %s", body)
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := call(t, nil, "GET", s.url+"/ofrep/v1/configuration", flagIngest, "", "If-None-Match", etag); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d, want 304", etag, resp.StatusCode)
	}
}

// TestOFREPNoContextInLogs: targeting keys and attribute values never reach
// the log, whether the evaluation succeeds or fails.
func TestOFREPNoContextInLogs(t *testing.T) {
	s := newOFREPServer(t, false)
	s.h.flags.Set([]rollout.Document{ofrepDoc(t, 3, 1)})
	const key, email = "tk-7f3a9c21e5", "jane.doe@example.com"
	ctx := `{"context": {"targetingKey": "` + key + `", "email": "` + email + `"}}`
	for _, body := range []string{ctx, ctx + " trailing", `{"context": {"targetingKey": {"k": "` + key + `"}, "email": "` + email + `"}}`} {
		for _, path := range []string{"/ofrep/v1/evaluate/flags/" + ofrepFlag, "/ofrep/v1/evaluate/flags/unknown", "/ofrep/v1/evaluate/flags"} {
			for _, tok := range []string{flagIngest, "", "wrong-token-0123456789"} {
				call(t, nil, "POST", s.url+path, tok, body)
				call(t, nil, "POST", s.url+path, "", body, headerAPIKey, tok)
			}
		}
	}
	c := ofrepClient(t, s.url, ofrep.WithBearerToken(flagIngest))
	c.String(t.Context(), ofrepFlag, "fallback", openfeature.NewEvaluationContext(key, map[string]any{"email": email}))

	logged := s.log.String()
	if !strings.Contains(logged, "/ofrep/v1/evaluate/flags") {
		t.Fatalf("the requests were not logged at all:\n%s", logged)
	}
	for _, secret := range []string{key, email, flagIngest, "wrong-token-0123456789"} {
		if strings.Contains(logged, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

// TestOFREPContext: the context becomes the targeting key and the
// attributes rollout.StringAttrs makes, numbers formatted as a Go provider
// would format the values its SDK holds (docs/ofrep.md, "How the context is
// matched").
func TestOFREPContext(t *testing.T) {
	tests := []struct {
		name, context string
		wantKey       string
		wantAttrs     map[string]string
	}{
		{"targeting key apart", `{"targetingKey": "u1", "country": "IN"}`, "u1", map[string]string{"country": "IN"}},
		{"no targeting key", `{"country": "IN"}`, "", map[string]string{"country": "IN"}},
		{"booleans", `{"beta": true, "legacy": false}`, "", map[string]string{"beta": "true", "legacy": "false"}},
		{"integers", `{"a": 2, "b": 2.0, "c": -7, "d": 1e3, "e": 9007199254740993, "f": 12345678901234567890}`, "",
			map[string]string{"a": "2", "b": "2", "c": "-7", "d": "1000", "e": "9007199254740993", "f": "12345678901234567890"}},
		{"other numbers", `{"a": 1.5, "b": 1e21, "c": 0.1, "d": 1e400}`, "", map[string]string{"a": "1.5", "b": "1e+21", "c": "0.1"}},
		{"ignored", `{"l": ["IN"], "o": {"country": "IN"}, "n": null}`, "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/ofrep/v1/evaluate/flags", strings.NewReader(`{"context": `+tt.context+`}`))
			ec, bad := readEvalContext(req)
			if bad != nil {
				t.Fatalf("refused: %+v", bad)
			}
			if ec.targetingKey != tt.wantKey || !maps.Equal(ec.attrs, tt.wantAttrs) {
				t.Errorf("key %q attrs %v, want %q %v", ec.targetingKey, ec.attrs, tt.wantKey, tt.wantAttrs)
			}
		})
	}
}
