// Command benchratio reads `go test -bench` output and prints every figure of
// a benchmark's "parity" run as a ratio against its "reference" run measured
// in the same invocation, so noisy machines still give comparable numbers.
//
// Benchmarks are paired by name: BenchmarkX/<case>/parity against
// BenchmarkX/<case>/reference. A figure with a target in [targets] is
// followed by the target and whether it was met.
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

// target is the ratio a figure of a benchmark must reach: at least min, or
// at most max (when max > 0).
type target struct{ min, max float64 }

// targets are keyed by benchmark name without /parity, then unit.
var targets = map[string]map[string]target{
	"BenchmarkB13/reconcile": {"rows/s": {min: 0.5}},
	"BenchmarkB14/identical": {"ns/op": {max: 0.2}},
}

// judge renders a figure's target and whether the ratio meets it.
func judge(name, unit string, ratio float64) string {
	t, ok := targets[name][unit]
	switch {
	case !ok:
		return ""
	case t.max > 0 && ratio <= t.max, t.max == 0 && ratio >= t.min:
		return fmt.Sprintf("  %s  met", t)
	}
	return fmt.Sprintf("  %s  MISSED", t)
}

func (t target) String() string {
	if t.max > 0 {
		return fmt.Sprintf("target ≤ %g", t.max)
	}
	return fmt.Sprintf("target ≥ %g", t.min)
}

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

func print(w io.Writer, runs map[string]figures) {
	var names []string
	for n := range runs {
		if strings.HasSuffix(n, "/parity") {
			names = append(names, strings.TrimSuffix(n, "/parity"))
		}
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n%-44s %-12s %14s %14s %9s\n", "benchmark", "figure", "reference", "parity", "ratio")
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
			switch {
			case !ok:
				fmt.Fprintf(w, "%-44s %-12s %14s %14.4g %9s\n", n, u, "-", par[u], "-")
			case r == 0:
				fmt.Fprintf(w, "%-44s %-12s %14.4g %14.4g %9s\n", n, u, r, par[u], "n/a")
			default:
				fmt.Fprintf(w, "%-44s %-12s %14.4g %14.4g %8.3fx%s\n", n, u, r, par[u], par[u]/r, judge(n, u, par[u]/r))
			}
		}
	}
}
