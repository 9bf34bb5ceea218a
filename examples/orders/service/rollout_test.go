package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/envelope"
)

// The tests in this file check what the end-to-end rollout scenario relies
// on. A pair is judged as Parity's verifier judges it: with the
// experiment's diff rules, and this example sets none, so with
// diff.Exact(), and counted divergent when Verdict.Divergent() says so.

// rig is the service running in-process against fresh databases and an
// embedded JetStream.
type rig struct {
	t   *testing.T
	ctx context.Context
	ns  *server.Server
	app *App
	url string
}

func needPostgres(t *testing.T) {
	t.Helper()
	testutil.RequirePostgres(t)
}

// start runs the service with opts, filling in the databases and NATS.
func start(t *testing.T, ns *server.Server, opts Options) *rig {
	t.Helper()
	needPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	if ns == nil {
		ns = testutil.RunJetStream(t)
	}
	opts.AdminURL = testutil.PostgresURL()
	opts.OldURL = testutil.FreshDatabase(t)
	opts.NewURL = testutil.FreshDatabase(t)
	if opts.NATSConn == nil {
		opts.NATSURL = ns.ClientURL()
	}
	opts.CreateStream = true
	opts.CompareTimeout = 30 * time.Second
	app, err := Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	return &rig{t: t, ctx: ctx, ns: ns, app: app, url: srv.URL}
}

// user is who a request is from.
type user struct{ id, country, plan string }

// do sends one request as u and returns the status and body.
func (r *rig) do(method, path string, u user, body string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.ctx, method, r.url+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	for h, v := range map[string]string{"X-User-ID": u.id, "X-Country": u.country, "X-Plan": u.plan} {
		if v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (r *rig) read(u user, order int) (int, string) {
	return r.do("GET", fmt.Sprintf("/orders/%d", order), u, "")
}

func (r *rig) write(u user, order int, status string) (int, string) {
	return r.do("PUT", fmt.Sprintf("/orders/%d/status", order), u, fmt.Sprintf(`{"status":%q}`, status))
}

// pairs flushes the service and returns every pair on the stream so far.
func (r *rig) pairs() []*envelope.Pair {
	r.t.Helper()
	if err := r.app.Flush(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	return streamPairs(r.t, r.ctx, r.ns)
}

// divergent is the verifier's judgement of p.
func divergent(p *envelope.Pair) bool { return diff.Exact().Judge(p).Verdict.Divergent() }

func describe(p *envelope.Pair) string {
	return fmt.Sprintf("%s %s user %s %v: control %s %s%s, candidate %s %s%s (client verdict %q, verifier %s)",
		p.Operation, p.Stage, p.User.Key, p.User.Attrs,
		p.Control.Outcome(), p.Control.Value, p.Control.Error,
		p.Candidate.Outcome(), p.Candidate.Value, p.Candidate.Error,
		p.ClientVerdict, diff.Exact().Judge(p).Verdict)
}

// stageHook records the stage each user was given.
type stageHook struct {
	openfeature.UnimplementedHook
	mu     sync.Mutex
	stages map[string][]string
}

func (h *stageHook) After(_ context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) error {
	v, _ := d.Value.(string)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stages == nil {
		h.stages = map[string][]string{}
	}
	key := hc.EvaluationContext().TargetingKey()
	h.stages[key] = append(h.stages[key], v)
	return nil
}

func (h *stageHook) of(user string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.stages[user])
}

// TestIdenticalSeedNeverDiverges: with SeedBugs false and no bug country,
// no pair diverges at any stage, reads and writes alike, including reads of
// orders after their status changed (lower-case in the old schema,
// upper-case in the new) and of an order neither database has.
func TestIdenticalSeedNeverDiverges(t *testing.T) {
	hook := &stageHook{}
	r := start(t, nil, Options{Hooks: []openfeature.Hook{hook}}) // SeedBugs false, the default rollout
	users := []struct {
		user
		stage envelope.Stage
	}{
		{user{"123", "US", "free"}, envelope.StageLive}, // the testing group
		{user{"456", "IN", "pro"}, envelope.StageLive},
		{user{"2001", "IN", "free"}, envelope.StageShadow}, // the segments
		{user{"2002", "US", "free"}, envelope.StageShadow},
		{user{"2003", "DE", "pro"}, envelope.StageShadow},
		{user{"2004", "DE", "free"}, envelope.StageDualWrite}, // everyone else
		{user{"2005", "BR", ""}, envelope.StageDualWrite},
	}
	statuses := []string{"pending", "paid", "shipped", "cancelled"}
	for i, u := range users {
		for order := 1; order <= 9; order++ {
			r.read(u.user, order)
		}
		// A compared read's other side may still be running after the
		// response, and would see the writes below in one database only:
		// a real divergence, but not one the seed or the code causes.
		if err := r.app.Flush(r.ctx); err != nil {
			t.Fatal(err)
		}
		for order := 1; order <= 8; order++ {
			if status, body := r.write(u.user, order, statuses[(i+order)%len(statuses)]); status != 200 {
				t.Errorf("write order %d as %s: %d %s", order, u.id, status, body)
			}
		}
		if status, _ := r.write(u.user, 99, "paid"); status != 404 {
			t.Errorf("write order 99 as %s: %d, want 404", u.id, status)
		}
		for order := 1; order <= 8; order++ {
			if status, body := r.read(u.user, order); status != 200 {
				t.Errorf("read order %d as %s: %d %s", order, u.id, status, body)
			}
		}
		if err := r.app.Flush(r.ctx); err != nil {
			t.Fatal(err)
		}
	}

	pairs := r.pairs()
	type opStage struct {
		op    string
		stage envelope.Stage
	}
	seen := map[opStage]int{}
	for _, p := range pairs {
		seen[opStage{p.Operation, p.Stage}]++
		if divergent(p) || p.ClientVerdict == "mismatch" {
			t.Errorf("divergent pair: %s", describe(p))
		}
	}
	// 9+8 reads compared per live or shadow user, 9 writes per user.
	want := map[opStage]int{
		{OpGetOrder, envelope.StageLive}:       2 * 17,
		{OpGetOrder, envelope.StageShadow}:     3 * 17,
		{OpSetStatus, envelope.StageLive}:      2 * 9,
		{OpSetStatus, envelope.StageShadow}:    3 * 9,
		{OpSetStatus, envelope.StageDualWrite}: 2 * 9,
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("pairs by operation and stage: %v, want %v", seen, want)
	}

	// The hook saw each user's stage, once per request.
	for _, u := range users {
		got := hook.of(u.id)
		if len(got) != 9+9+8 || slices.ContainsFunc(got, func(s string) bool { return s != string(u.stage) }) {
			t.Errorf("hook saw user %s get %v, want %d times %s", u.id, got, 9+9+8, u.stage)
		}
	}
}

// TestBugCountry: the new read path is wrong for the bug's country only, on
// reads only, and SetBugCountry switches it at run time.
func TestBugCountry(t *testing.T) {
	r := start(t, nil, Options{BugCountry: "IN"})
	indian := user{"2001", "IN", "free"} // shadow: served by the old database
	american := user{"2002", "US", "free"}
	tester := user{"123", "IN", "free"} // live: served by the new database

	if _, body := r.read(indian, 1); body != `{"id":1,"customer_id":123,"total_cents":1999,"status":"paid"}` {
		t.Errorf("shadow read as an IN user: %s, want the old database's order", body)
	}
	if _, body := r.read(tester, 1); body != `{"id":1,"customer_id":123,"total_cents":199900,"status":"paid"}` {
		t.Errorf("live read as an IN user: %s, want the buggy total", body)
	}
	r.read(american, 1)
	r.write(indian, 6, "paid")
	r.write(tester, 7, "shipped")
	before := r.pairs()

	r.app.SetBugCountry("")
	r.read(user{"2003", "IN", "free"}, 1)
	r.read(user{"456", "IN", "pro"}, 2)
	after := r.pairs()[len(before):]

	wantDivergent := map[string]bool{ // by operation and user
		OpGetOrder + " 2001": true, OpGetOrder + " 123": true, OpGetOrder + " 2002": false,
		OpSetStatus + " 2001": false, OpSetStatus + " 123": false,
		OpGetOrder + " 2003": false, OpGetOrder + " 456": false,
	}
	all := append(before, after...)
	if len(all) != len(wantDivergent) {
		t.Fatalf("%d pairs, want %d", len(all), len(wantDivergent))
	}
	for _, p := range all {
		want, ok := wantDivergent[p.Operation+" "+p.User.Key]
		if !ok {
			t.Errorf("unexpected pair %s", describe(p))
			continue
		}
		if divergent(p) != want {
			t.Errorf("divergent %v, want %v: %s", divergent(p), want, describe(p))
		}
	}
	if c := r.pairs(); len(c) != len(all) {
		t.Errorf("%d pairs on the stream, want %d", len(c), len(all))
	}
}

// TestTrafficDivergesOnlyForTheBug plays Traffic against the service in
// three phases: no bug (no pair diverges), the bug in IN (exactly the reads
// of IN users diverge), the bug fixed (none again).
func TestTrafficDivergesOnlyForTheBug(t *testing.T) {
	r := start(t, nil, Options{})
	topts := TrafficOptions{Rate: 300, Users: 50}
	var seen int
	phase := func(name, bug string) (pairs []*envelope.Pair) {
		r.app.SetBugCountry(bug)
		ctx, cancel := context.WithTimeout(r.ctx, time.Second)
		defer cancel()
		Traffic(ctx, r.url, topts)
		all := r.pairs()
		pairs, seen = all[seen:], len(all)
		if len(pairs) < 50 {
			t.Fatalf("%s: %d pairs from a second of traffic", name, len(pairs))
		}
		return pairs
	}
	for _, p := range phase("no bug", "") {
		if divergent(p) {
			t.Errorf("no bug: divergent pair %s", describe(p))
		}
	}
	var inReads int
	for _, p := range phase("bug in IN", "IN") {
		want := p.Operation == OpGetOrder && p.User.Attrs["country"] == "IN"
		if want {
			inReads++
		}
		if divergent(p) != want {
			t.Errorf("bug in IN: divergent %v, want %v: %s", divergent(p), want, describe(p))
		}
	}
	if inReads == 0 {
		t.Error("bug in IN: no read of an IN user was compared")
	}
	for _, p := range phase("bug fixed", "") {
		if divergent(p) {
			t.Errorf("bug fixed: divergent pair %s", describe(p))
		}
	}
}

// slowProvider serves the flag from memory after an initialisation that
// takes a while, to show that Setup waits for it.
type slowProvider struct {
	*memprovider.InMemoryProvider
	ready, shut atomic.Bool
}

func (p *slowProvider) Init(openfeature.EvaluationContext) error {
	time.Sleep(300 * time.Millisecond)
	p.ready.Store(true)
	return nil
}

func (p *slowProvider) Shutdown() { p.shut.Store(true) }

// TestProviderHooksAndConn: a provider given in Options serves the flag
// (after its Init), hooks see what it evaluated, and a NATS connection
// given in Options carries the pairs and stays open after Close.
func TestProviderHooksAndConn(t *testing.T) {
	evaluate := func(f memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		variant := "off"
		switch fc[openfeature.TargetingKey] {
		case "a":
			variant = "live"
		case "b":
			variant = "shadow"
		}
		return variant, openfeature.ProviderResolutionDetail{Variant: variant, Reason: openfeature.TargetingMatchReason}
	}
	provider := &slowProvider{InMemoryProvider: memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		FlagKey: {Key: FlagKey, State: memprovider.Enabled, DefaultVariant: "off",
			Variants: map[string]any{"off": "off", "live": "live", "shadow": "shadow"}, ContextEvaluator: &evaluate},
	})}
	hook := &stageHook{}
	ns := testutil.RunJetStream(t)
	nc := testutil.Connect(t, ns)
	// A rollout that would put everyone in complete, were it used.
	everyone := envelope.StageComplete
	r := start(t, ns, Options{Provider: provider, Hooks: []openfeature.Hook{hook}, NATSConn: nc,
		Rollout: Rollout{TestingGroup: everyone, Segments: everyone, Everyone: everyone}})
	if !provider.ready.Load() {
		t.Fatal("Setup returned before the provider's Init did")
	}
	r.read(user{id: "a"}, 1)
	r.read(user{id: "b"}, 1)
	r.read(user{id: "c"}, 1)
	r.write(user{id: "a"}, 6, "paid")

	for u, want := range map[string][]string{"a": {"live", "live"}, "b": {"shadow"}, "c": {"off"}} {
		if got := hook.of(u); !slices.Equal(got, want) {
			t.Errorf("hook saw user %s get %v, want %v", u, got, want)
		}
	}
	var got []string
	for _, p := range r.pairs() {
		got = append(got, fmt.Sprintf("%s %s %s", p.Operation, p.User.Key, p.Stage))
	}
	slices.Sort(got)
	if want := []string{"get-order a live", "get-order b shadow", "set-status a live"}; !slices.Equal(got, want) {
		t.Errorf("pairs %q, want %q", got, want)
	}
	r.app.Close()
	if nc.IsClosed() {
		t.Error("Close closed the NATS connection given in Options")
	}
	if !provider.shut.Load() {
		t.Error("Close did not shut the provider down")
	}
}

func TestSetupRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Rollout: Rollout{Segments: "sideways"}}, `orders: Options.Rollout.Segments: unknown stage "sideways"`},
		{Options{Hooks: []openfeature.Hook{nil}}, "orders: Options.Hooks[0] is nil"},
	} {
		if _, err := Setup(t.Context(), tc.opts); err == nil || err.Error() != tc.want {
			t.Errorf("Setup: %v, want %s", err, tc.want)
		}
	}
}
