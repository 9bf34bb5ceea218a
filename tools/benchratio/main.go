// Command benchratio reads `go test -bench` output and prints every figure of
// a benchmark's "parity" run as a ratio against its "reference" run measured
// in the same invocation, so noisy machines still give comparable numbers.
//
// Benchmarks are paired by name: BenchmarkX/<case>/parity against
// BenchmarkX/<case>/reference. Each line prints the figure's ratio (parity ÷
// reference) and, when DESIGN.md sets one, its target and whether the run
// met it; a target is either a ratio or a difference (parity − reference,
// for latencies that the hook adds to a call).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type figures map[string]float64 // unit -> value

var procSuffix = regexp.MustCompile(`-\d+$`)

func main() {
	in := io.Reader(os.Stdin)
	if len(os.Args) > 1 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchratio:", err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	runs, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	print(os.Stdout, runs)
}

// parse collects, per benchmark name (without the -GOMAXPROCS suffix), the
// figures of its last run.
func parse(r io.Reader) (map[string]figures, error) {
	runs := map[string]figures{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		fig := figures{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			fig[f[i+1]] = v
		}
		runs[name] = fig
	}
	return runs, sc.Err()
}

// target is what a figure must reach: its ratio at least or at most value,
// its difference (parity − reference) at most value, or the parity figure
// itself at most value.
type target struct {
	bench *regexp.Regexp // the benchmark name without /parity
	unit  string
	kind  string // ">=x", "<=x" (ratios), "<=+" (difference) or "<=" (parity's own figure)
	value float64
}

// targets are DESIGN.md's, per benchmark and figure.
var targets = []target{
	{regexp.MustCompile(`^BenchmarkB1/1\.5KB$`), "pairs/s", ">=x", 1.0},
	{regexp.MustCompile(`^BenchmarkB1/8\.0KB$`), "pairs/s", ">=x", 0.8},
	{regexp.MustCompile(`^BenchmarkB2/`), "ns/op", "<=x", 1.3},
	{regexp.MustCompile(`^BenchmarkHookLatency$`), "p50-ns", "<=+", 100},
	{regexp.MustCompile(`^BenchmarkHookLatency$`), "p99-ns", "<=+", 2500},
	{regexp.MustCompile(`^BenchmarkShadowReadStaticFlag$`), "p50-ns", "<=+", 1000},
	{regexp.MustCompile(`^BenchmarkShadowReadStaticFlag$`), "p99-ns", "<=+", 5000},
	{regexp.MustCompile(`^BenchmarkB6$`), "rows/pair", "<=x", 0.05},
	{regexp.MustCompile(`^BenchmarkB6$`), "walB/pair", "<=x", 0.05},
	{regexp.MustCompile(`^BenchmarkB7$`), "pairs/s", ">=x", 0.95},
	{regexp.MustCompile(`^BenchmarkB10$`), "p99-ns", "<=x", 1.5},
	// Issue 17: bytes a day of count history costs once its minutes are past
	// the minute retention, against keeping every minute.
	{regexp.MustCompile(`^BenchmarkB12$`), "B/day", "<=x", 0.1},
	// Issue 17.5: the collector's RSS after 30 minutes at 5,000 pairs/s
	// against after 5 minutes (make bench-soak).
	{regexp.MustCompile(`^BenchmarkB12RSS$`), "rss-MB", "<=x", 1.2},
	{regexp.MustCompile(`^BenchmarkB13/reconcile$`), "rows/s", ">=x", 0.5},
	{regexp.MustCompile(`^BenchmarkB14/identical$`), "ns/op", "<=x", 0.2},
	// Issue 18.10: the worst pair (two 1 MB arrays, every element
	// different, matched as multisets) per KB, against a typical pair of the
	// same size and against parsing it.
	{regexp.MustCompile(`^BenchmarkWorstCase/judge-vs-typical$`), "us/KB", "<=x", 4},
	{regexp.MustCompile(`^BenchmarkWorstCase/explain-vs-typical$`), "us/KB", "<=x", 8},
	{regexp.MustCompile(`^BenchmarkWorstCase/judge-vs-parse$`), "us/KB", "<=x", 10},
	// Issue 17 (B11): every dashboard page and API call with 30 days of
	// history against the same with one hour: p99 ≤ 1.5×, and ≤ 300 ms for
	// the default windows (every case but the 7d and all windows); the
	// overview of 1,000 experiments ≤ 300 ms.
	{regexp.MustCompile(`^BenchmarkB11/(overview|experiment-.*|api-.*)$`), "p99-ns", "<=x", 1.5},
	{regexp.MustCompile(`^BenchmarkB11/(overview|overview-1000|experiment-24h|api-.*)$`), "p99-ns", "<=", 300e6},
	// Issue 18.2: the overview's p99 with 10,000 experiments against 10.
	{regexp.MustCompile(`^BenchmarkOverviewScale/10000-experiments$`), "p99-ns", "<=x", 3},
}

// judge returns the target text and met/missed for a figure, or "-", "-".
// A figure with several targets meets them only if it meets all of them.
func judge(bench, unit string, ref, par float64) (string, string) {
	var texts []string
	result := "met"
	for _, t := range targets {
		if t.unit != unit || !t.bench.MatchString(bench) {
			continue
		}
		var ok bool
		var text string
		switch t.kind {
		case ">=x":
			ok, text = ref > 0 && par/ref >= t.value, fmt.Sprintf(">= %gx", t.value)
		case "<=x":
			ok, text = ref > 0 && par/ref <= t.value, fmt.Sprintf("<= %gx", t.value)
		case "<=+":
			ok, text = par-ref <= t.value, fmt.Sprintf("<= %+g", t.value)
		case "<=":
			ok, text = par <= t.value, fmt.Sprintf("<= %g", t.value)
		}
		texts = append(texts, text)
		if !ok {
			result = "missed"
		}
	}
	if len(texts) == 0 {
		return "-", "-"
	}
	return strings.Join(texts, ", "), result
}

func print(w io.Writer, runs map[string]figures) {
	var names []string
	for n := range runs {
		if strings.HasSuffix(n, "/parity") {
			names = append(names, strings.TrimSuffix(n, "/parity"))
		}
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n%-44s %-12s %14s %14s %9s %12s %10s  %s\n", "benchmark", "figure", "reference", "parity", "ratio", "difference", "target", "result")
	for _, n := range names {
		ref, ok := runs[n+"/reference"]
		if !ok {
			fmt.Fprintf(w, "%-44s (no reference run)\n", n)
			continue
		}
		par := runs[n+"/parity"]
		units := make([]string, 0, len(par))
		for u := range par {
			units = append(units, u)
		}
		sort.Strings(units)
		for _, u := range units {
			r, ok := ref[u]
			if !ok {
				fmt.Fprintf(w, "%-44s %-12s %14s %14.4g %9s %12s %10s  %s\n", n, u, "-", par[u], "-", "-", "-", "-")
				continue
			}
			ratio := "n/a"
			if r != 0 {
				ratio = fmt.Sprintf("%.3fx", par[u]/r)
			}
			tgt, result := judge(n, u, r, par[u])
			fmt.Fprintf(w, "%-44s %-12s %14.4g %14.4g %9s %+12.4g %10s  %s\n", n, u, r, par[u], ratio, par[u]-r, tgt, result)
		}
	}
}
