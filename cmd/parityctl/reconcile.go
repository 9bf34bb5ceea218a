package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
)

// Exit codes of reconcile run.
const (
	exitAgree       = 0
	exitDiffer      = 1
	exitCouldNotRun = 2
)

const reconcileUsage = `usage:
  parityctl reconcile run --old-url URL --old-table T --new-url URL --new-table T --key COLUMN [--experiment E] [--json] ...
                                                                 (parityctl reconcile run -h lists the flags)
  parityctl reconcile start --experiment E --old-source S --old-table T --new-source S --new-table T --key COLUMN [--segments C,...] [--rate N]
  parityctl reconcile status --experiment E | --id N
  parityctl reconcile pause|resume|cancel --id N`

// stderrIsTerminal says whether progress may be drawn; a variable so tests
// can set it.
var stderrIsTerminal = func() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func reconcileCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, reconcileUsage)
		return exitCouldNotRun
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintf(stderr, "%s\n\n%s\n", reconcileUsage, exitCodes)
		return 0
	case "run":
		code, err := reconcileRun(args[1:], stdout, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "parityctl reconcile:", err)
		}
		return code
	case "start", "status", "pause", "resume", "cancel":
		return sweepCmd(args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, reconcileUsage)
	return exitCouldNotRun
}

// runOutput is what reconcile run prints with --json.
type runOutput struct {
	reconcile.Counts
	Complete        bool            `json:"complete"`
	Operation       string          `json:"operation"`
	Checksum        bool            `json:"checksum"`
	ChecksumColumns []string        `json:"checksum_columns"`
	ChecksumNote    string          `json:"checksum_note,omitempty"`
	FetchedRows     int64           `json:"fetched_rows"`
	ElapsedSeconds  float64         `json:"elapsed_seconds"`
	Segments        []segmentOutput `json:"segments"`
	Samples         []sampleOutput  `json:"samples"`
}

type segmentOutput struct {
	Segment string            `json:"segment"`
	Attrs   map[string]string `json:"attrs,omitempty"`
	reconcile.Counts
}

// sampleOutput names a differing row and where it differs, without its
// values.
type sampleOutput struct {
	Key       string   `json:"key"`
	Segment   string   `json:"segment"`
	Kind      string   `json:"kind"`
	Signature string   `json:"signature,omitempty"`
	Paths     []string `json:"paths,omitempty"`
	Reason    string   `json:"reason,omitempty"`
}

func reconcileRun(args []string, stdout, stderr io.Writer) (int, error) {
	fs := cli.New("parityctl reconcile run")
	fs.SetOutput(stderr)
	oldURL := fs.String("old-url", "", "the old database (required; prefer the variable: flags show in ps)")
	oldTable := fs.String("old-table", "", "the old table or view, optionally schema.table (required)")
	newURL := fs.String("new-url", "", "the new database (required; prefer the variable)")
	newTable := fs.String("new-table", "", "the new table or view (required)")
	key := fs.String("key", "", "the key column, the same name on both sides (required)")
	experiment := fs.String("experiment", "", "judge rows under this experiment's diff rules, read from the collector at --url")
	rulesFile := fs.String("rules", "", "judge rows under the diff rules in this JSON file (docs/diff-rules.md)")
	operation := fs.String("operation", "", "the rules section rows are judged under (default reconcile:<old table>)")
	segments := fs.String("segments", "", "comma-separated columns whose values make a row's segment")
	chunk := fs.Int("chunk-rows", reconcile.DefaultChunkRows, "rows of the old side per chunk")
	rate := fs.Float64("rate", 0, "most rows read per second from the old side (0: no limit)")
	recheck := fs.Duration("recheck-delay", reconcile.DefaultRecheckDelay, "read differing rows again after this long; only the second look counts (negative: at once)")
	noChecksum := fs.Bool("no-checksum", false, "compare every row instead of checksums first")
	collation := fs.String("key-collation", "", "for a text key: compare keys in this collation on both sides (e.g. C)")
	asJSON := fs.Bool("json", false, "print one JSON object on standard output")
	base := fs.String("url", "http://127.0.0.1:8080", "the collector's address, for --experiment")
	token := fs.String("token", "", "a viewer token for --experiment (prefer the variable)")
	for name, env := range map[string]string{"old-url": "PARITY_OLD_URL", "new-url": "PARITY_NEW_URL", "url": "PARITY_URL", "token": "PARITY_TOKEN"} {
		fs.Env(name, env)
	}
	if help, err := parseFlags(fs, args, stderr, "parityctl reconcile run --old-url URL --old-table T --new-url URL --new-table T --key COLUMN [flags]"); help || err != nil {
		if err != nil {
			return exitCouldNotRun, err
		}
		return exitAgree, nil
	}
	for _, req := range []struct{ flag, v string }{{"--old-url", *oldURL}, {"--old-table", *oldTable}, {"--new-url", *newURL}, {"--new-table", *newTable}, {"--key", *key}} {
		if req.v == "" {
			return exitCouldNotRun, fmt.Errorf("%s is required", req.flag)
		}
	}
	if *experiment != "" && *rulesFile != "" {
		return exitCouldNotRun, errors.New("--experiment and --rules: give one")
	}
	if *chunk <= 0 {
		return exitCouldNotRun, fmt.Errorf("--chunk-rows %d: must be positive", *chunk)
	}
	if *rate < 0 {
		return exitCouldNotRun, fmt.Errorf("--rate %g: must not be negative", *rate)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	differ, err := loadRules(ctx, *rulesFile, *base, *experiment, *token)
	if err != nil {
		return exitCouldNotRun, err
	}
	if *recheck == 0 {
		*recheck = -1 // zero means at once here, not the default
	}
	old, err := pgsource.Open(ctx, pgsource.Config{Side: "old", URL: *oldURL, Table: *oldTable, Key: *key, KeyCollation: *collation})
	if err != nil {
		return exitCouldNotRun, err
	}
	defer old.Close()
	nw, err := pgsource.Open(ctx, pgsource.Config{Side: "new", URL: *newURL, Table: *newTable, Key: *key, KeyCollation: *collation})
	if err != nil {
		return exitCouldNotRun, err
	}
	defer nw.Close()
	opts := reconcile.Options{Differ: differ, Operation: *operation, Segments: cli.List(*segments), ChunkRows: *chunk,
		RateLimit: *rate, RecheckDelay: *recheck, NoChecksum: *noChecksum}
	plan, err := reconcile.Check(ctx, old, nw, opts)
	if err != nil {
		return exitCouldNotRun, err
	}
	start := time.Now()
	bar := stderrIsTerminal()
	if bar {
		opts.OnProgress = func(p reconcile.Progress) { drawProgress(stderr, p) }
	}
	res, err := reconcile.RunPlan(ctx, old, nw, plan, opts)
	if bar {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		return exitCouldNotRun, err
	}
	out := runOutput{Counts: res.Counts, Complete: res.Complete, Operation: plan.Operation, Checksum: res.Checksum,
		ChecksumColumns: res.ChecksumColumns, ChecksumNote: plan.ChecksumNote, FetchedRows: res.FetchedRows,
		ElapsedSeconds: time.Since(start).Seconds(), Segments: []segmentOutput{}, Samples: []sampleOutput{}}
	if out.ChecksumColumns == nil {
		out.ChecksumColumns = []string{}
	}
	for _, k := range slices.Sorted(maps.Keys(res.Segments)) {
		s := res.Segments[k]
		out.Segments = append(out.Segments, segmentOutput{Segment: k, Attrs: s.Attrs, Counts: s.Counts})
	}
	for _, s := range res.Samples {
		so := sampleOutput{Key: s.Key, Segment: s.Segment, Kind: s.Kind, Reason: s.Reason}
		if s.Kind == reconcile.KindDivergent {
			so.Signature = s.Signature
		}
		for _, d := range s.Diffs {
			so.Paths = append(so.Paths, d.Path+" "+string(d.Kind))
		}
		out.Samples = append(out.Samples, so)
	}
	if *asJSON {
		b, _ := json.Marshal(out)
		fmt.Fprintln(stdout, string(b))
	} else {
		printRun(stdout, out, *oldTable, *newTable)
	}
	if res.Counts.Differences() > 0 {
		return exitDiffer, nil
	}
	return exitAgree, nil
}

func printRun(w io.Writer, o runOutput, oldTable, newTable string) {
	verdict := "every row agrees"
	if o.Differences() > 0 {
		verdict = fmt.Sprintf("%d rows differ", o.Differences())
	}
	fmt.Fprintf(w, "%s → %s: %s — %d compared, %d matched, %d divergent, %d missing in new, %d extra in new, %d invalid (%.1fs)\n",
		oldTable, newTable, verdict, o.Compared, o.Matched, o.Divergent, o.MissingInNew, o.ExtraInNew, o.Invalid, o.ElapsedSeconds)
	if !o.Checksum && o.ChecksumNote != "" {
		fmt.Fprintf(w, "  compared row by row: %s\n", o.ChecksumNote)
	}
	for _, s := range o.Segments {
		fmt.Fprintf(w, "  %-32s %10d compared %8d divergent %8d missing %8d extra %6d invalid\n", s.Segment, s.Compared, s.Divergent, s.MissingInNew, s.ExtraInNew, s.Invalid)
	}
	for _, s := range o.Samples {
		detail := strings.Join(s.Paths, ", ")
		if s.Reason != "" {
			detail = s.Reason
		}
		fmt.Fprintf(w, "  key %s (%s): %s %s\n", s.Key, s.Segment, s.Kind, detail)
	}
}

// drawProgress redraws one line: a bar, rows, rate, ETA, differences.
func drawProgress(w io.Writer, p reconcile.Progress) {
	const width = 30
	rate := float64(p.Rows) / max(p.Elapsed.Seconds(), 1e-3)
	bar, eta := strings.Repeat("·", width), "?"
	if p.Estimate > 0 {
		frac := min(1, float64(p.Rows)/float64(p.Estimate))
		n := int(frac * width)
		bar = strings.Repeat("█", n) + strings.Repeat("·", width-n)
		if rate > 0 && p.Estimate > p.Rows {
			eta = (time.Duration(float64(p.Estimate-p.Rows)/rate) * time.Second).Round(time.Second).String()
		} else {
			eta = "0s"
		}
	}
	fmt.Fprintf(w, "\r\033[K%s %d/~%d rows  %.0f rows/s  ETA %s  %d differences", bar, p.Rows, p.Estimate, rate, eta, p.Differences)
}

// loadRules reads the diff rules from a file or the collector; none means
// exact comparison.
func loadRules(ctx context.Context, file, base, experiment, token string) (*diff.Differ, error) {
	var raw []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--rules: %w", err)
		}
		raw = b
	case experiment != "":
		resp, body, err := askCtx(ctx, http.MethodGet, base+"/api/v1/experiments/"+url.PathEscape(experiment)+"/rules", token)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("--experiment %s: the collector answered %s", experiment, resp.Status)
		}
		var v struct {
			Rules json.RawMessage `json:"rules"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, fmt.Errorf("--experiment %s: the collector's rules: %w", experiment, err)
		}
		raw = v.Rules
	default:
		return diff.Exact(), nil
	}
	var r diff.Rules
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("diff rules: %w", err)
	}
	return diff.Compile(r)
}

func askCtx(ctx context.Context, method, u, token string) (*http.Response, []byte, error) {
	deadline, ok := ctx.Deadline()
	timeout := 10 * time.Second
	if ok {
		timeout = time.Until(deadline)
	}
	return ask(method, u, token, nil, timeout)
}
