package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

// TestRedactedFieldsNeverStored: with redaction rules for an experiment, the
// secrets in its pairs appear nowhere in the database — not in samples, not
// in their differences, not in dead letters — while the diff still sees the
// real values (a changed email is still a mismatch).
func TestRedactedFieldsNeverStored(t *testing.T) {
	const experiment = "e2e-redact"
	const email, card = "ann.secret@example.com", "4111111111111111"
	ctx := context.Background()
	dbURL := testutil.FreshDatabase(t)
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.SaveRedaction(ctx, experiment, json.RawMessage(`[{"path":"user.email","mode":"mask"},{"path":"**.card","mode":"hash"}]`), "test"); err != nil {
		t.Fatal(err)
	}
	ns := testutil.RunJetStream(t)
	app, err := collector.Start(ctx, collector.Options{
		Addr: "127.0.0.1:0", DatabaseURL: dbURL, NATSURL: ns.ClientURL(), Workers: 2,
		OperatorTokens: []string{operatorToken},
		Verifier:       verifier.Options{FlushInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	nc := testutil.Connect(t, ns)
	pub, _ := publish.New(nc, publish.Options{})
	now := time.Now().UTC()
	for i := range 20 {
		ctl := fmt.Sprintf(`{"id":%d,"user":{"email":%q,"name":"Ann"},"payment":{"card":%q},"total":100}`, i, email, card)
		cand := fmt.Sprintf(`{"id":%d,"user":{"email":"other-%s","name":"Ann"},"payment":{"card":%q},"total":%d}`, i, email, card, 100+i%2)
		pub.Publish(&envelope.Pair{ID: fmt.Sprintf("r-%d", i), Experiment: experiment, Operation: "GetUser", Kind: envelope.KindRead,
			Time: now, Stage: envelope.StageShadow, User: envelope.User{Key: "u"},
			Control: envelope.Observation{Value: json.RawMessage(ctl)}, Candidate: envelope.Observation{Value: json.RawMessage(cand)}})
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A broken envelope carrying the secret, on the experiment's subject.
	if err := nc.Publish(envelope.Subject(experiment, "GetUser"), []byte(`{"version":1,"user":{"email":"`+email+`"`)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		c := operationCounts(t, app, experiment, "GetUser")
		var dl struct {
			Total int64 `json:"total"`
		}
		getJSON(t, app.URL()+"/api/v1/dead-letters", &dl)
		if c.pairs != 20 || dl.Total != 1 {
			return fmt.Sprintf("counted %+v and %d dead letters, want 20 pairs and 1", c, dl.Total)
		}
		return ""
	})
	if c := operationCounts(t, app, experiment, "GetUser"); c.divergent != 20 {
		t.Errorf("%d of 20 divergent: the diff must still see the real (different) emails", c.divergent)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var leaks, masked int
	// $1 and $2 are text for LIKE; $3 is the email as bytes for the dead
	// letters' bytea (one parameter cannot be both).
	err = conn.QueryRow(ctx, `
		SELECT
		  (SELECT count(*) FROM samples WHERE control::text LIKE '%'||$1||'%' OR candidate::text LIKE '%'||$1||'%' OR diffs::text LIKE '%'||$1||'%'
		      OR control::text LIKE '%'||$2||'%' OR candidate::text LIKE '%'||$2||'%' OR diffs::text LIKE '%'||$2||'%')
		+ (SELECT count(*) FROM dead_letters WHERE position($3::bytea IN coalesce(data, ''::bytea)) > 0),
		  (SELECT count(*) FROM samples WHERE control::text LIKE '%[redacted]%' AND candidate::text LIKE '%hmac:%')`,
		email, card, []byte(email)).Scan(&leaks, &masked)
	if err != nil {
		t.Fatal(err)
	}
	if leaks != 0 {
		t.Errorf("%d rows hold a redacted secret", leaks)
	}
	if masked == 0 {
		t.Error("no sample shows the masked and hashed values: were samples stored at all?")
	}

	// The API: reading needs no secret, changing needs an operator, bad
	// rules name the problem.
	url := app.URL() + "/api/v1/experiments/" + experiment + "/redaction"
	if code, body := send(t, http.MethodPut, url, "", map[string]any{"rules": []any{}}); code != http.StatusUnauthorized {
		t.Errorf("PUT redaction without a token: %d %s", code, body)
	}
	bad := map[string]any{"rules": []map[string]string{{"path": "user.email", "mode": "blur"}}}
	if code, body := send(t, http.MethodPut, url, operatorToken, bad); code != http.StatusBadRequest || !strings.Contains(body, "rules[0]") {
		t.Errorf("PUT bad redaction: %d %s, want 400 naming rules[0]", code, body)
	}
	var view collector.RedactionView
	getJSON(t, url, &view)
	if len(view.Rules) != 2 || view.Rules[1].Path != "**.card" {
		t.Errorf("GET redaction %+v", view)
	}
}
