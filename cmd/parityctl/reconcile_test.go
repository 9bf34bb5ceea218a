package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parityhq/parity/internal/testutil"
)

// TestReconcileRun: the one-shot form exits 0 when every row agrees, 1 when
// rows differ, 2 when it cannot run; --json prints one object on stdout and
// nothing else there.
func TestReconcileRun(t *testing.T) {
	stderrIsTerminal = func() bool { return false }
	schema := "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2) NOT NULL, country text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
	seed := "INSERT INTO orders SELECT g, g * 1.50, (ARRAY['IN','US'])[g % 2 + 1] FROM generate_series(1, 500) g"
	oldURL := testutil.CreatedDatabase(t, schema, seed)
	sameURL := testutil.CreatedDatabase(t, strings.Replace(schema, "numeric(10,2)", "float8", 1), seed)
	diffURL := testutil.CreatedDatabase(t, schema, seed,
		"UPDATE orders SET total = total + 1 WHERE id = 250",
		"DELETE FROM orders WHERE id = 499",
		"INSERT INTO orders VALUES (1000, 1, 'IN')",
		"UPDATE orders SET updated_at = now() + interval '1 day' WHERE id = 7")
	rules := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rules, []byte(`{"operations":{"reconcile:orders":{"ignore":["updated_at"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(newURL string, extra ...string) []string {
		return append([]string{"reconcile", "run", "--old-url", oldURL, "--old-table", "orders", "--new-url", newURL, "--new-table", "orders",
			"--key", "id", "--rules", rules, "--recheck-delay", "1ms", "--chunk-rows", "100"}, extra...)
	}

	code, out, errOut := parityctl(args(sameURL, "--json")...)
	if code != exitAgree {
		t.Fatalf("same rows: exit %d: %s %s", code, out, errOut)
	}
	var o map[string]any
	if err := json.Unmarshal([]byte(out), &o); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	if o["rows_compared"] != 500.0 || o["matched"] != 500.0 || o["checksum"] != true {
		t.Errorf("same rows: %s", out)
	}
	if errOut != "" {
		t.Errorf("stderr is not a terminal, yet it got %q", errOut)
	}

	code, out, errOut = parityctl(args(diffURL, "--json", "--segments", "country")...)
	if code != exitDiffer {
		t.Fatalf("differing rows: exit %d: %s %s", code, out, errOut)
	}
	var d struct {
		Compared  int64 `json:"rows_compared"`
		Matched   int64 `json:"matched"`
		Divergent int64 `json:"divergent"`
		Missing   int64 `json:"missing_in_new"`
		Extra     int64 `json:"extra_in_new"`
		Segments  []struct {
			Segment   string `json:"segment"`
			Divergent int64  `json:"divergent"`
		} `json:"segments"`
		Samples []struct {
			Key, Kind string
			Paths     []string
		} `json:"samples"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Compared != 501 || d.Matched != 498 || d.Divergent != 1 || d.Missing != 1 || d.Extra != 1 || len(d.Samples) != 3 {
		t.Errorf("differing rows: %s", out)
	}
	if d.Samples[0].Key != "250" || d.Samples[0].Paths[0] != "total changed" || len(d.Segments) != 2 {
		t.Errorf("samples and segments: %s", out)
	}

	code, out, _ = parityctl(args(diffURL)...)
	if code != exitDiffer || !strings.Contains(out, "3 rows differ") || !strings.Contains(out, "key 499 (all): missing_in_new") {
		t.Errorf("text output, exit %d:\n%s", code, out)
	}

	for _, bad := range [][]string{
		args(diffURL, "--key", "nope"),
		{"reconcile", "run", "--old-url", oldURL},
		args(diffURL, "--chunk-rows", "0"),
		{"reconcile", "nope"},
	} {
		code, out, errOut := parityctl(bad...)
		if code != exitCouldNotRun || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", bad, code, out, errOut)
		}
	}

	// On a terminal, progress goes to stderr; stdout stays one object.
	stderrIsTerminal = func() bool { return true }
	defer func() { stderrIsTerminal = func() bool { return false } }()
	code, out, errOut = parityctl(args(sameURL, "--json")...)
	if code != exitAgree || !strings.Contains(errOut, "rows/s") || strings.Count(out, "\n") != 1 {
		t.Errorf("terminal: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
