package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
)

// TestOrders runs the service in-process against two fresh PostgreSQL
// databases (which it creates) and an embedded JetStream, and checks what
// clients get, what each database holds, and which pairs were published.
func TestOrders(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ns := testutil.RunJetStream(t)
	opts := DefaultOptions()
	opts.AdminURL = testutil.PostgresURL()
	opts.OldURL = testutil.FreshDatabase(t)
	opts.NewURL = testutil.FreshDatabase(t)
	opts.NATSURL = ns.ClientURL()
	app, err := Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})

	do := func(method, path string, headers map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	tester := map[string]string{"X-User-ID": "123", "X-Country": "FR"}   // testing group: live
	indian := map[string]string{"X-User-ID": "777", "X-Country": "IN"}   // segment: shadow
	pro := map[string]string{"X-User-ID": "778", "X-Plan": "pro"}        // segment: shadow
	everyone := map[string]string{"X-User-ID": "999", "X-Country": "FR"} // dualwrite

	for _, tc := range []struct {
		method, path string
		headers      map[string]string
		body         string
		wantStatus   int
		wantBody     string
	}{
		{"GET", "/orders/1", tester, "", 200, `{"id":1,"customer_id":123,"total_cents":1999,"status":"paid"}`},
		{"GET", "/orders/4", indian, "", 200, `{"id":4,"customer_id":789,"total_cents":1001,"status":"paid"}`},
		{"GET", "/orders/4", tester, "", 200, `{"id":4,"customer_id":789,"total_cents":1000,"status":"paid"}`},
		{"GET", "/orders/5", pro, "", 200, `{"id":5,"customer_id":321,"total_cents":4200,"status":"pending"}`},
		{"GET", "/orders/5", tester, "", 404, `{"error":"order 5: not found"}`},
		{"GET", "/orders/3", everyone, "", 200, `{"id":3,"customer_id":789,"total_cents":12050,"status":"shipped"}`},
		{"PUT", "/orders/2/status", everyone, `{"status":"shipped"}`, 200, `{"rows_affected":1}`},
		{"PUT", "/orders/5/status", indian, `{"status":"paid"}`, 200, `{"rows_affected":1}`},
		{"PUT", "/orders/1/status", tester, `{"status":"bogus"}`, 400, `{"error":"body must be {\"status\": \"pending|paid|shipped|cancelled\"}"}`},
	} {
		if tc.method == "PUT" {
			// A compared read's other side may still be running; let it
			// finish before a write changes what it would see.
			if err := app.getOrder.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		status, body := do(tc.method, tc.path, tc.headers, tc.body)
		if status != tc.wantStatus || body != tc.wantBody {
			t.Errorf("%s %s as %s: %d %s, want %d %s", tc.method, tc.path, tc.headers["X-User-ID"], status, body, tc.wantStatus, tc.wantBody)
		}
	}

	// Both databases took the dual writes.
	var oldStatus, newState string
	if err := app.getOrder.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.setStatus.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	oldDB, newDB := dbConn(t, opts.OldURL), dbConn(t, opts.NewURL)
	if err := oldDB.QueryRow(ctx, `SELECT status FROM orders WHERE id = 2`).Scan(&oldStatus); err != nil {
		t.Fatal(err)
	}
	if err := newDB.QueryRow(ctx, `SELECT state FROM customer_orders WHERE order_id = 2`).Scan(&newState); err != nil {
		t.Fatal(err)
	}
	if oldStatus != "shipped" || newState != "SHIPPED" {
		t.Errorf("order 2: old %q, new %q; want shipped in both", oldStatus, newState)
	}

	// The pairs on the stream: one per compared call, in the order made.
	if err := app.pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Op, Stage, User, Verdict, Control, Candidate string
	}
	var got []summary
	for _, p := range streamPairs(t, ctx, ns) {
		got = append(got, summary{p.Operation, string(p.Stage), p.User.Key, p.ClientVerdict,
			fmt.Sprintf("%s %s%s", p.Control.Outcome(), p.Control.Value, p.Control.Error),
			fmt.Sprintf("%s %s%s", p.Candidate.Outcome(), p.Candidate.Value, p.Candidate.Error)})
	}
	want := []summary{
		{"get-order", "live", "123", "match",
			`ok {"id":1,"customer_id":123,"total_cents":1999,"status":"paid"}`,
			`ok {"id":1,"customer_id":123,"total_cents":1999,"status":"paid"}`},
		{"get-order", "shadow", "777", "mismatch",
			`ok {"id":4,"customer_id":789,"total_cents":1001,"status":"paid"}`,
			`ok {"id":4,"customer_id":789,"total_cents":1000,"status":"paid"}`},
		{"get-order", "live", "123", "mismatch",
			`ok {"id":4,"customer_id":789,"total_cents":1001,"status":"paid"}`,
			`ok {"id":4,"customer_id":789,"total_cents":1000,"status":"paid"}`},
		{"get-order", "shadow", "778", "",
			`ok {"id":5,"customer_id":321,"total_cents":4200,"status":"pending"}`,
			`error order 5: not found`},
		{"get-order", "live", "123", "",
			`ok {"id":5,"customer_id":321,"total_cents":4200,"status":"pending"}`,
			`error order 5: not found`},
		{"set-status", "dualwrite", "999", "match", `ok {"rows_affected":1}`, `ok {"rows_affected":1}`},
		{"set-status", "shadow", "777", "mismatch", `ok {"rows_affected":1}`, `ok {"rows_affected":0}`},
	}
	// Reads publish when their slower side is in, so order them by call.
	if len(got) != len(want) {
		t.Fatalf("%d pairs, want %d:\n%v", len(got), len(want), got)
	}
	remaining := append([]summary(nil), want...)
	for _, g := range got {
		found := false
		for i, w := range remaining {
			if g == w {
				remaining = append(remaining[:i], remaining[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			t.Errorf("unexpected pair %+v", g)
		}
	}
	for _, w := range remaining {
		t.Errorf("missing pair %+v", w)
	}

	// The counters, on the debug endpoint and as Prometheus metrics.
	_, stats := do("GET", "/debug/parity", nil, "")
	var st map[string]map[string]any
	if err := json.Unmarshal([]byte(stats), &st); err != nil {
		t.Fatal(err)
	}
	if st["get_order"]["Published"] != 5.0 || st["set_status"]["Published"] != 2.0 {
		t.Errorf("stats: %s", stats)
	}
	if _, metrics := do("GET", "/metrics", nil, ""); !strings.Contains(metrics,
		`parity_migration_pairs_published_total{experiment="orders-pg",kind="read",operation="get-order"} 5`) {
		t.Errorf("metrics lack the published count:\n%s", metrics)
	}
}

func dbConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// streamPairs reads every pair on the stream, in stream order.
func streamPairs(t *testing.T, ctx context.Context, ns *server.Server) []*envelope.Pair {
	t.Helper()
	js, err := jetstream.New(testutil.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*envelope.Pair
	for fetched := uint64(0); fetched < info.State.Msgs; { // messages: one pair or a batch each
		batch, err := cons.Fetch(int(info.State.Msgs-fetched), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := fetched
		for msg := range batch.Messages() {
			fetched++
			m, err := envelope.DecodeMessage(msg.Data())
			if err != nil {
				t.Fatalf("invalid message on the stream: %v", err)
			}
			for _, it := range m.Items {
				if it.Err != nil {
					t.Fatalf("invalid pair on the stream: %v", it.Err)
				}
				out = append(out, it.Pair)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if fetched == n {
			t.Fatalf("%d of the stream's %d messages, and no more", n, info.State.Msgs)
		}
	}
	return out
}
