package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/testutil"
)

// TestSweepCommands: a sweep started through parityctl runs in the
// collector to completion and reports the seeded differences; changing a
// finished sweep is refused; only an operator may start one.
func TestSweepCommands(t *testing.T) {
	const op = "parityctl-operator-token-0123456789"
	schema := "CREATE TABLE orders (id bigint PRIMARY KEY, country text NOT NULL, total numeric(10,2) NOT NULL)"
	seed := "INSERT INTO orders SELECT g, (ARRAY['IN','US'])[g % 2 + 1], g FROM generate_series(1, 3000) g"
	oldURL := testutil.CreatedDatabase(t, schema, seed)
	newURL := testutil.CreatedDatabase(t, schema, seed, "UPDATE orders SET total = 0 WHERE id IN (10, 2999)", "DELETE FROM orders WHERE id = 1500")
	app, err := collector.Start(context.Background(), collector.Options{
		Addr: "127.0.0.1:0", DatabaseURL: testutil.FreshDatabase(t), NATSURL: testutil.RunJetStream(t).ClientURL(),
		Workers: -1, OperatorTokens: []string{op}, Logger: slog.New(slog.DiscardHandler),
		ReconcileSources: map[string]string{"legacy": oldURL, "cloud": newURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	common := []string{"--url", app.URL(), "--token", op}
	start := append([]string{"reconcile", "start", "--experiment", "orders-db", "--old-source", "legacy", "--old-table", "orders",
		"--new-source", "cloud", "--new-table", "orders", "--key", "id", "--segments", "country", "--recheck-delay", "10ms"}, common...)

	if code, _, errOut := parityctl(append(start[:len(start)-2:len(start)-2], "--url", app.URL())...); code == 0 || !strings.Contains(errOut, "401") {
		t.Errorf("start without a token: exit %d, %q", code, errOut)
	}
	bad := append([]string{"reconcile", "start", "--experiment", "orders-db", "--old-source", "nope", "--old-table", "orders",
		"--new-source", "cloud", "--new-table", "orders", "--key", "id"}, common...)
	if code, _, errOut := parityctl(bad...); code != exitDiffer || !strings.Contains(errOut, `old.source "nope" is not a configured source (configured: cloud, legacy)`) {
		t.Errorf("an unknown source: exit %d, %q", code, errOut)
	}
	code, out, errOut := parityctl(start...)
	if code != 0 || !strings.Contains(out, "sweep 1 orders-db reconcile:orders") {
		t.Fatalf("start: exit %d, %q %q", code, out, errOut)
	}
	testutil.Eventually(t, 60*time.Second, func() string {
		_, out, _ := parityctl(append([]string{"reconcile", "status", "--id", "1"}, common...)...)
		if !strings.Contains(out, ": complete,") {
			return out
		}
		return ""
	})
	_, out, _ = parityctl(append([]string{"reconcile", "status", "--experiment", "orders-db"}, common...)...)
	if !strings.Contains(out, "3000 of ~3000 rows (100%)") || !strings.Contains(out, "3 differences (2 divergent, 1 missing in new, 0 extra in new, 0 invalid)") {
		t.Errorf("status: %s", out)
	}
	if code, _, errOut := parityctl(append([]string{"reconcile", "pause", "--id", "1"}, common...)...); code != exitDiffer || !strings.Contains(errOut, "is complete: cannot pause") {
		t.Errorf("pause a complete sweep: exit %d, %q", code, errOut)
	}
	// The dashboard shows the sweep with its progress.
	resp, err := http.Get(app.URL() + "/experiments/orders-db")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`id="sweeps"`, `data-sweep="1"`, `<progress max="100" value="100">`, `legacy.orders → cloud.orders`, `2 divergent, 1 missing in new`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the experiment page lacks %q", want)
		}
	}
	resp, err = http.Get(app.URL() + "/experiments/orders-db?operation=reconcile:orders")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the experiment page for the sweep's operation: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	// An operator starts one from the dashboard's form.
	form := url.Values{"old_source": {"legacy"}, "old_table": {"orders"}, "new_source": {"cloud"}, "new_table": {"orders"}, "key": {"id"}}
	req, _ := http.NewRequest(http.MethodPost, app.URL()+"/experiments/orders-db/sweeps", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+op)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/experiments/orders-db#sweeps" {
		t.Errorf("the start form: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if code, out, _ := parityctl(append([]string{"reconcile", "status", "--id", "2"}, common...)...); code != 0 || !strings.Contains(out, "sweep 2 orders-db reconcile:orders") {
		t.Errorf("the sweep started from the form: %d %s", code, out)
	}
	// The sweep's counts are an operation like any other.
	_, out, _ = parityctl("gate", "--url", app.URL(), "--experiment", "orders-db", "--min-pairs", "10", "--max-rate", "0.5%")
	if !strings.Contains(out, "country=") {
		t.Errorf("gate over the sweep's counts: %s", out)
	}
}
