package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRatios(t *testing.T) {
	in := `goos: linux
BenchmarkB1/1.5KB/reference-2   	       1	1000000000 ns/op	     30000 pairs/s	     512 B/op	       4 allocs/op
BenchmarkB1/1.5KB/parity-2      	       1	1000000000 ns/op	     24000 pairs/s	    1024 B/op	       8 allocs/op
BenchmarkLonely/parity-2        	     100	       50 ns/op
BenchmarkHookLatency/reference-2 	   10000	     50000 ns/op	       100 p50-ns	      1000 p99-ns
BenchmarkHookLatency/parity-2    	   10000	     50000 ns/op	       150 p50-ns	     11000 p99-ns
BenchmarkB11/experiment-24h/reference-2 	      40	  90000000 ns/op	  100000000 p99-ns
BenchmarkB11/experiment-24h/parity-2    	      40	  90000000 ns/op	  140000000 p99-ns
BenchmarkB11/overview-1000/reference-2  	      40	  90000000 ns/op	  250000000 p99-ns
BenchmarkB11/overview-1000/parity-2     	      40	  90000000 ns/op	  350000000 p99-ns
PASS
`
	runs, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	print(&out, runs)
	for _, want := range []string{
		"BenchmarkB1/1.5KB", "pairs/s", "0.800x", // 24000 / 30000
		"2.000x", // B/op and allocs/op doubled
		"BenchmarkLonely                              (no reference run)",
		">= 1x  missed", // B1 at 1.5 KB must reach the reference
		"+1e+04", "<= +2500  missed", "<= +100  met",
		// B11: within 1.5× and 300 ms; overview-1000 past 300 ms (its only target).
		"1.400x", "<= 1.5x, <= 3e+08  met", "<= 3e+08  missed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
