package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/internal/demo"
	"github.com/parityhq/parity/internal/testutil"
)

// soakRate is B12's load: pairs per second through the Go hook.
const soakRate = 5000

// BenchmarkB12RSS is the memory half of B12 (issue 17): the collector's
// resident memory after 30 minutes at 5,000 pairs/s must be at most 1.2×
// its resident memory after 5 minutes.
//
// It runs the real system as `make demo` does, as separate processes: the
// collector binary with its embedded NATS server and in-process verifier
// workers over a fresh database, and cmd/loadgen publishing the demo's
// pairs (about 200 bytes each, eight segments, one diverging) through the
// Go hook with its default batched envelopes at 5,000 pairs/s. Every
// five seconds it reads the collector's VmRSS from /proc/<pid>/status.
//
// It reports, as /reference, the collector at a sixth of the run (5
// minutes) and, as /parity, at its end (30 minutes): rss-MB (the mean of
// the samples in the minute before, so where one garbage collection falls
// does not decide it), peak-MB (the highest sample so far), heap-MB (the Go
// heap in use, the embedded NATS server's included, from the collector's
// /metrics, averaged over the same minute) and pairs (counted by the verifiers by then, from
// its /metrics). After the load
// stops it waits until every pair the hook published is counted in the
// database and fails unless that count equals loadgen's published count,
// with nothing dropped or failed: the load really happened.
//
// PARITY_SOAK_MINUTES sets the length (default 30; a fraction is allowed,
// for a smoke run). Run it with `make bench-soak`, or:
//
//	PARITY_SOAK_MINUTES=30 go test -run '^$' -bench 'B12RSS' -benchtime 1x -timeout 60m ./e2e/
func BenchmarkB12RSS(b *testing.B) {
	minutes := 30.0
	if s := os.Getenv("PARITY_SOAK_MINUTES"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			b.Fatalf("PARITY_SOAK_MINUTES=%q: want a positive number of minutes", s)
		}
		minutes = v
	}
	total := time.Duration(minutes * float64(time.Minute))
	ref := total / 6
	bins := buildSoak(b, "collector", "loadgen")
	dbURL := testutil.FreshDatabase(b)
	col := startSoakCollector(b, bins["collector"], dbURL)

	type mark struct {
		rss, peak, heap float64 // MB
		pairs           float64 // counted by then
	}
	var marks [2]mark
	var series []string // one sample each 30th of the run, for the log

	load := exec.Command(bins["loadgen"], "--nats-url", col.natsURL, "--rate", strconv.Itoa(soakRate),
		"--duration", total.String())
	var loadOut bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadOut
	start := time.Now()
	if err := load.Start(); err != nil {
		b.Fatal(err)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.Wait() }()
	loadEnded := false
	defer func() {
		if !loadEnded {
			_ = load.Process.Kill()
			<-loadDone
		}
	}()

	// A mark's RSS is the mean of the samples in the window before it (a
	// minute of 30), so one garbage collection's timing does not decide it.
	window := total / 30
	every := min(5*time.Second, window/6)
	tick := time.NewTicker(every)
	defer tick.Stop()
	type sample struct {
		at        time.Duration
		rss, heap float64
	}
	var samples []sample
	var peak float64
	next := 0
	lastLogged := time.Duration(-1)
	for next < 2 {
		select {
		case err := <-loadDone:
			loadEnded = true
			b.Fatalf("loadgen ended before the run's end: %v\n%s", err, loadOut.String())
		case <-col.done:
			b.Fatalf("collector exited during the run:\n%s", col.out.String())
		case now := <-tick.C:
			rss, err := vmRSS(col.cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			at := now.Sub(start)
			heap := col.metric(b, "go_memstats_heap_inuse_bytes") / (1 << 20)
			samples = append(samples, sample{at, rss, heap})
			peak = max(peak, rss)
			if m := at.Truncate(total / 30); m != lastLogged {
				lastLogged = m
				series = append(series, fmt.Sprintf("%s %.0f/%.0f", at.Round(time.Second), rss, heap))
			}
			// The end mark a sample early: loadgen stops at total.
			due := []time.Duration{ref, total - every}[next]
			if at < due {
				continue
			}
			var rssSum, heapSum float64
			var n int
			for _, s := range samples {
				if s.at > at-window {
					rssSum += s.rss
					heapSum += s.heap
					n++
				}
			}
			marks[next] = mark{rss: rssSum / float64(n), heap: heapSum / float64(n), peak: peak,
				pairs: col.metric(b, "parity_verifier_pairs_judged_total")}
			next++
		}
	}
	b.Logf("collector VmRSS/heap in use (MB), each 30th of the run: %s", strings.Join(series, ", "))
	b.Logf("marks (at a sixth of the run, at its end): %+v", marks)
	err := <-loadDone
	loadEnded = true
	if err != nil {
		b.Fatalf("loadgen: %v\n%s", err, loadOut.String())
	}
	published := parseLoadgen(b, loadOut.String())
	// Every published pair counted, exactly once, in the database.
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	testutil.Eventually(b, 2*time.Minute, func() string {
		var n int64
		if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(pairs), 0) FROM experiments WHERE name = $1`, demo.Experiment).Scan(&n); err != nil {
			return err.Error()
		}
		if n != published {
			return fmt.Sprintf("%d pairs counted in the database, loadgen published %d", n, published)
		}
		return ""
	})
	b.Logf("%d pairs published in %v (%.0f/s), all counted", published, total, float64(published)/total.Seconds())
	for i, name := range []string{"reference", "parity"} {
		b.Run(name, func(b *testing.B) {
			b.ReportMetric(marks[i].rss, "rss-MB")
			b.ReportMetric(marks[i].peak, "peak-MB")
			b.ReportMetric(marks[i].heap, "heap-MB")
			b.ReportMetric(marks[i].pairs, "pairs")
		})
	}
}

// buildSoak builds commands of this module into a temporary directory.
func buildSoak(b *testing.B, names ...string) map[string]string {
	b.Helper()
	dir := b.TempDir()
	args := []string{"build", "-o", dir + "/"}
	for _, n := range names {
		args = append(args, "../cmd/"+n)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	bins := map[string]string{}
	for _, n := range names {
		bins[n] = filepath.Join(dir, n)
	}
	return bins
}

// soakCollector is the collector binary running as its own process.
type soakCollector struct {
	*benchProc
	http    string
	natsURL string
}

// startSoakCollector starts the collector as `make demo` does, without
// demo traffic: embedded NATS, its default in-process verifier workers, a
// data directory of its own.
func startSoakCollector(b *testing.B, bin, dbURL string) *soakCollector {
	b.Helper()
	natsPort := freePortTB(b)
	c := &soakCollector{http: fmt.Sprintf("127.0.0.1:%d", freePortTB(b)), natsURL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort)}
	c.benchProc = startBenchProc(b, exec.Command(bin, "--addr", c.http, "--embedded-nats-addr", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"--data-dir", b.TempDir(), "--database-url", dbURL, "--log-level", "warn"), "collector")
	testutil.Eventually(b, time.Minute, func() string {
		resp, err := http.Get("http://" + c.http + "/readyz")
		if err != nil {
			return "collector not serving: " + err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("collector not ready: %d", resp.StatusCode)
		}
		return ""
	})
	return c
}

// metric reads one unlabelled figure from the collector's /metrics.
func (c *soakCollector) metric(b *testing.B, name string) float64 {
	b.Helper()
	return scrapeMetric(b, c.http, name)
}

// vmRSS returns a process's resident set size in MB (from VmRSS, in kB).
func vmRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

var loadgenLine = regexp.MustCompile(`loadgen: offered (\d+), published (\d+), dropped (\d+), failed (\d+)`)

// parseLoadgen returns how many pairs loadgen published, failing the
// benchmark if it dropped or failed any.
func parseLoadgen(b *testing.B, out string) int64 {
	b.Helper()
	m := loadgenLine.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("loadgen printed no summary:\n%s", out)
	}
	n := make([]int64, 4)
	for i := range n {
		n[i], _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	if n[2] != 0 || n[3] != 0 || n[1] != n[0] {
		// The hook sheds pairs rather than block its caller: a drop means
		// the publisher's queue filled while acks were slow (a machine too
		// busy to sustain the rate), so the run did not carry its load.
		b.Fatalf("loadgen offered %d, published %d, dropped %d, failed %d: the load did not all arrive", n[0], n[1], n[2], n[3])
	}
	return n[1]
}

func freePortTB(b *testing.B) int {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
