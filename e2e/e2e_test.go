package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/publish"
)

// segment is one of the test's four segments with its known divergence: pair
// number k of the segment diverges when k%every == 0 (every 0: never).
type segment struct {
	country, plan string
	every         int
}

var segments = []segment{
	{"IN", "pro", 10},  // 10%
	{"US", "free", 0},  // 0%
	{"DE", "pro", 100}, // 1%
	{"BR", "free", 4},  // 25%
}

// makePair returns pair i: segment i%4, diverging as the segment says.
func makePair(experiment string, i int, now time.Time) (*envelope.Pair, bool) {
	s := segments[i%len(segments)]
	k := i / len(segments)
	control := fmt.Sprintf(`{"id":%d,"items":[{"sku":"a","price":100},{"sku":"b","price":250}],"status":"paid"}`, i)
	candidate := control
	divergent := s.every > 0 && k%s.every == 0
	if divergent {
		candidate = strings.Replace(control, `"price":250`, `"price":249`, 1)
	}
	return &envelope.Pair{
		ID: fmt.Sprintf("%s-%d", experiment, i), Experiment: experiment, Operation: "GetOrder",
		Kind: envelope.KindRead, Time: now, Stage: envelope.StageShadow,
		User:      envelope.User{Key: fmt.Sprintf("user-%d", i), Attrs: map[string]string{"country": s.country, "plan": s.plan}},
		Control:   envelope.Observation{Value: json.RawMessage(control), DurationNS: 1000},
		Candidate: envelope.Observation{Value: json.RawMessage(candidate), DurationNS: 900},
	}, divergent
}

type counts struct{ pairs, divergent int64 }

// startSystem runs the collector over an embedded JetStream server and a fresh
// database, with two in-process verifier workers on their own connections.
func startSystem(t *testing.T, ingestToken string) (*collector.App, *nats.Conn) {
	t.Helper()
	ns := testutil.RunJetStream(t)
	ctx := context.Background()
	app, err := collector.Start(ctx, collector.Options{
		Addr:         "127.0.0.1:0",
		DatabaseURL:  testutil.FreshDatabase(t),
		NATSURL:      ns.ClientURL(),
		Workers:      2,
		IngestTokens: []string{ingestToken},
		Verifier:     verifier.Options{FlushInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("start collector: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return app, testutil.Connect(t, ns)
}

// waitForPulls waits until the verifiers' durable consumer has n pull
// requests waiting at the server.
func waitForPulls(t *testing.T, nc *nats.Conn, n int) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, natsnames.PairStream, natsnames.VerifierDurable)
		if err != nil {
			return fmt.Sprintf("verifiers' consumer: %v", err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Sprintf("verifiers' consumer: %v", err)
		}
		if info.NumWaiting < n {
			return fmt.Sprintf("%d pull requests waiting, want %d", info.NumWaiting, n)
		}
		return ""
	})
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: decode %s: %v", url, body, err)
		}
	}
	return resp.StatusCode
}

type segmentsResponse struct {
	Segments []struct {
		Segment    string `json:"segment"`
		Divergence struct {
			Pairs     int64   `json:"pairs"`
			Divergent int64   `json:"divergent"`
			Rate      float64 `json:"rate"`
			Low       float64 `json:"rate_low"`
			High      float64 `json:"rate_high"`
		} `json:"divergence"`
	} `json:"segments"`
}

func apiCounts(t *testing.T, app *collector.App, experiment string) map[string]counts {
	t.Helper()
	var r segmentsResponse
	if code := getJSON(t, app.URL()+"/api/v1/experiments/"+experiment+"/segments?window=all", &r); code != http.StatusOK {
		return nil
	}
	got := map[string]counts{}
	for _, s := range r.Segments {
		got[s.Segment] = counts{s.Divergence.Pairs, s.Divergence.Divergent}
	}
	return got
}

func sameCounts(got, want map[string]counts) string {
	if len(got) != len(want) {
		return fmt.Sprintf("segments %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			return fmt.Sprintf("segment %s: %+v, want %+v (all: %v)", k, got[k], w, got)
		}
	}
	return ""
}

// TestTenThousandPairsCountedExactly is the walking skeleton's acceptance
// test: 10,000 pairs through the hook, two verifiers, exact counts per
// segment through the API, nothing lost and nothing counted twice.
func TestTenThousandPairsCountedExactly(t *testing.T) {
	const n = 10_000
	const experiment = "e2e-orders"
	app, nc := startSystem(t, "ingest-token-0123456789")
	// Both workers' pull requests wait at the server before the first pair
	// is sent: the server hands messages to waiting requests in turn, so
	// both take part. A worker still starting when the batches arrive
	// would find them all taken by the other.
	waitForPulls(t, nc, len(app.Workers()))

	pub, err := publish.New(nc, publish.Options{QueueSize: n})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]counts{}
	now := time.Now().UTC()
	for i := range n {
		p, divergent := makePair(experiment, i, now)
		key := "country=" + p.User.Attrs["country"] + ",plan=" + p.User.Attrs["plan"]
		c := want[key]
		c.pairs++
		if divergent {
			c.divergent++
		}
		want[key] = c
		if !pub.Publish(p) {
			t.Fatalf("pair %d dropped", i)
		}
	}
	// The same pair id again: the hook recognises the id it sent lately
	// (a batch's Nats-Msg-Id is the batch's, so JetStream cannot).
	dup, _ := makePair(experiment, 0, now)
	pub.Publish(dup)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		t.Fatalf("close publisher: %v", err)
	}
	if st := pub.Stats(); st.Published != n+1 || st.Duplicates != 1 || st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("publisher stats %+v, want %d published (one a recognised duplicate) and none dropped or failed", st, n+1)
	}

	// The same message twice: JetStream's duplicate window stores it once,
	// so it is counted once. The identity is the message's (the pair's id
	// for a message of one pair, the batch's id for a batch), so the pair
	// goes as its own message; an id re-offered inside a different batch
	// would be a different message and be counted again, as
	// docs/guarantees.md#duplicates says, unless the same hook still
	// remembers the id (as for pair 0 above).
	single, err := publish.New(nc, publish.Options{BatchPairs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		p, _ := makePair(experiment, n, now)
		if !single.Publish(p) {
			t.Fatal("duplicate pair dropped")
		}
	}
	p, divergent := makePair(experiment, n, now)
	key := "country=" + p.User.Attrs["country"] + ",plan=" + p.User.Attrs["plan"]
	c := want[key]
	c.pairs++
	if divergent {
		c.divergent++
	}
	want[key] = c
	if err := single.Close(ctx); err != nil {
		t.Fatalf("close publisher: %v", err)
	}
	if st := single.Stats(); st.Published != 2 {
		t.Fatalf("publisher stats %+v, want both copies published (one stored)", st)
	}

	testutil.Eventually(t, 60*time.Second, func() string { return sameCounts(apiCounts(t, app, experiment), want) })

	// Every message is acknowledged, so nothing can be counted again later.
	testutil.Eventually(t, 10*time.Second, func() string {
		var judged, dups uint64
		for _, w := range app.Workers() {
			judged += w.Stats().Judged
			dups += w.Stats().Duplicates
		}
		if judged != n+1 {
			return fmt.Sprintf("workers judged %d pairs, want %d", judged, n+1)
		}
		return ""
	})
	if msg := sameCounts(apiCounts(t, app, experiment), want); msg != "" {
		t.Fatal(msg)
	}
	// Both workers took part.
	for i, w := range app.Workers() {
		if w.Stats().Judged == 0 {
			t.Errorf("worker %d judged nothing; the durable consumer should spread pairs", i)
		}
	}

	// The dashboard shows the same numbers.
	resp, err := http.Get(app.URL() + "/experiments/" + experiment + "?window=all")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard: %d %s", resp.StatusCode, page)
	}
	for seg, c := range want {
		row := fmt.Sprintf(`data-segment="%s"`, seg)
		if !strings.Contains(string(page), row) {
			t.Errorf("dashboard lacks segment %s", seg)
		}
		if !strings.Contains(string(page), fmt.Sprintf(`data-col="pairs">%s<`, thousands(c.pairs))) {
			t.Errorf("dashboard lacks pair count %d of %s", c.pairs, seg)
		}
	}
}

// thousands writes n as the dashboard does, with thousands separators.
func thousands[N ~int | ~int64 | ~uint64](n N) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestBadEnvelopesAreDeadLettered publishes envelopes a worker cannot use
// between good ones: each bad one is set aside with its reason, the good ones
// are all counted, and no worker stops.
func TestBadEnvelopesAreDeadLettered(t *testing.T) {
	const experiment = "e2e-bad"
	app, nc := startSystem(t, "ingest-token-0123456789")
	bad := map[string]string{
		"not json":         `{"version":1,`,
		"wrong version":    `{"version":3}`,
		"batch without id": `{"version":2,"pairs":[]}`,
		"missing version":  `{"id":"x"}`,
		"invalid utf-8":    "{\"version\":1,\"id\":\"\xff\"}",
		"wrong type":       `{"version":1,"id":7}`,
		"unknown kind":     `{"version":1,"id":"k1","experiment":"e2e-bad","operation":"Op","kind":"delete","time":"2026-01-01T00:00:00Z","stage":"shadow","user":{"key":"u"},"control":{"duration_ns":1},"candidate":{"duration_ns":1}}`,
		"deep nesting":     `{"version":1,"control":{"value":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`,
	}
	now := time.Now().UTC()
	good := 0
	for reason, body := range bad {
		if err := nc.Publish(envelope.Subject(experiment, "Op"), []byte(body)); err != nil {
			t.Fatalf("%s: %v", reason, err)
		}
		p, _ := makePair(experiment, good, now)
		b, err := envelope.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishMsg(&nats.Msg{Subject: p.Subject(), Data: b, Header: nats.Header{jetstream.MsgIDHeader: {p.ID}}}); err != nil {
			t.Fatal(err)
		}
		good++
	}
	// A valid pair without its id as Nats-Msg-Id is refused: republished,
	// it would be counted again.
	noID, _ := makePair(experiment, 98, now)
	b, _ := envelope.Marshal(noID)
	if err := nc.Publish(noID.Subject(), b); err != nil {
		t.Fatal(err)
	}
	// A valid envelope on another experiment's subject is refused too.
	p, _ := makePair("other-experiment", 99, now)
	b, _ = envelope.Marshal(p)
	if err := nc.PublishMsg(&nats.Msg{Subject: envelope.Subject(experiment, "GetOrder"), Data: b, Header: nats.Header{jetstream.MsgIDHeader: {p.ID}}}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	testutil.Eventually(t, 30*time.Second, func() string {
		var total int64
		for _, c := range apiCounts(t, app, experiment) {
			total += c.pairs
		}
		if total != int64(good) {
			return fmt.Sprintf("%d good pairs counted, want %d", total, good)
		}
		return ""
	})
	var dl struct {
		Total       int64 `json:"total"`
		DeadLetters []struct {
			Reason string `json:"reason"`
		} `json:"dead_letters"`
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		getJSON(t, app.URL()+"/api/v1/dead-letters", &dl)
		if dl.Total != int64(len(bad)+2) {
			return fmt.Sprintf("%d dead letters, want %d", dl.Total, len(bad)+2)
		}
		return ""
	})
	for _, d := range dl.DeadLetters {
		if !strings.Contains(d.Reason, "envelope") && !strings.Contains(d.Reason, "subject") && !strings.Contains(d.Reason, "Nats-Msg-Id") {
			t.Errorf("dead letter reason %q does not say what was wrong", d.Reason)
		}
	}
}

// TestIngestOverHTTP publishes pairs through POST /api/v1/pairs as a program
// in another language would, with per-item answers.
func TestIngestOverHTTP(t *testing.T) {
	const experiment = "e2e-http"
	const token = "ingest-token-0123456789"
	app, nc := startSystem(t, token)
	now := time.Now().UTC()
	var lines []string
	for i := range 3 {
		p, _ := makePair(experiment, i, now)
		b, err := envelope.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	lines = append(lines, `{"version":1,"id":"bad","experiment":"e2e-http"}`)
	future, _ := makePair(experiment, 3, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	fb, _ := envelope.Marshal(future)
	lines = append(lines, string(fb))
	body := strings.Join(lines, "\n")

	post := func(auth string) (*http.Response, collector.IngestResponse) {
		req, _ := http.NewRequest(http.MethodPost, app.URL()+"/api/v1/pairs", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r collector.IngestResponse
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return resp, r
	}
	if resp, _ := post(""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", resp.StatusCode)
	}
	if resp, _ := post("Bearer wrong-token-0123456789"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", resp.StatusCode)
	}
	resp, r := post("Bearer " + token)
	if resp.StatusCode != http.StatusOK || r.Accepted != 3 || r.Rejected != 2 || r.Failed != 0 {
		t.Fatalf("ingest: status %d, %+v; want 200 with 3 accepted and 2 rejected", resp.StatusCode, r)
	}
	if it := r.Items[3]; it.Status != "rejected" || !strings.Contains(it.Error, "field") {
		t.Errorf("bad item answer %+v does not name the problem", it)
	}
	if it := r.Items[4]; it.Status != "rejected" || !strings.Contains(it.Error, "9999-12-31T00:00:00Z is more than 5m0s ahead") {
		t.Errorf("item dated 9999: %+v, want rejected for being ahead of the clock", it)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		var total int64
		for _, c := range apiCounts(t, app, experiment) {
			total += c.pairs
		}
		if total != 3 {
			return fmt.Sprintf("%d pairs counted, want 3", total)
		}
		return ""
	})
	// The same request sent again (a client retrying after a lost answer)
	// is accepted and stored once: its batch carries the same id, derived
	// from its pairs' ids.
	if resp, r := post("Bearer " + token); resp.StatusCode != http.StatusOK || r.Accepted != 3 {
		t.Fatalf("repeated ingest: status %d, %+v; want 200 with 3 accepted", resp.StatusCode, r)
	}
	js, _ := jetstream.New(nc)
	testutil.Eventually(t, 30*time.Second, func() string { return settled(js, func() string { return "" }) })
	var total int64
	for _, c := range apiCounts(t, app, experiment) {
		total += c.pairs
	}
	if total != 3 {
		t.Fatalf("%d pairs counted after the request was repeated, want 3", total)
	}
}

// TestPipelineShowsHooksAndBacklog: hooks report their counters, and the
// overview and GET /api/v1/pipeline show them with the stream's backlog.
func TestPipelineShowsHooksAndBacklog(t *testing.T) {
	app, nc := startSystem(t, "ingest-token-0123456789")
	pub, err := publish.New(nc, publish.Options{Instance: "orders-api-1", QueueSize: 1, ReportInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := makePair("e2e-pipe", 0, time.Now().UTC())
	pub.Publish(p)
	pub.Publish(nil)                                        // counted as dropped
	if err := pub.Close(context.Background()); err != nil { // sends a last report
		t.Fatal(err)
	}
	var v collector.PipelineView
	testutil.Eventually(t, 10*time.Second, func() string {
		getJSON(t, app.URL()+"/api/v1/pipeline", &v)
		if len(v.Hooks) != 1 || v.Hooks[0].Instance != "orders-api-1" || v.Totals.Dropped != 1 || v.Totals.Published != 1 {
			return fmt.Sprintf("pipeline %+v", v)
		}
		return ""
	})
	if v.Backlog == nil {
		t.Error("no stream backlog reported")
	}
	_, page := getPage(t, app.URL()+"/")
	if !strings.Contains(page, `id="hooks-dropped">dropped 1<`) {
		t.Errorf("overview does not show the hook's drop")
	}
}

func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// settled returns "" when the verifiers' consumer has nothing pending and
// nothing awaiting an ack (a worker acks only after its commit), else what
// is left, followed by more; for testutil.Eventually.
func settled(js jetstream.JetStream, more func() string) string {
	cons, err := js.Consumer(context.Background(), natsnames.PairStream, natsnames.VerifierDurable)
	if err != nil {
		return err.Error()
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		return err.Error()
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		return fmt.Sprintf("%d messages pending, %d awaiting an ack%s", info.NumPending, info.NumAckPending, more())
	}
	return ""
}
