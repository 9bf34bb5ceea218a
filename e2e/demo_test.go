package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/demo"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/report"
)

// readmeClaims are the README's sentences about what `make demo` shows,
// with runs of white space standing for line breaks. If the README changes
// them, this test must change with it: it checks them against the demo.
var readmeClaims = []string{
	"experiment `orders-db` has eight segments",
	"exactly one, `country=IN,plan=pro`, diverges — in 8% of its pairs (exactly 8 in every 100, from the first minute), at `items[1].price` — while all the others agree.",
	"The demo's gate (at most 1% divergence, 1,000 pairs per segment) passes the seven good segments and fails `country=IN,plan=pro` within the first minute.",
}

// TestDemoInBrowser runs the demo as `make demo` runs it (the collector's
// demo traffic at its default rate, embedded NATS, two verifiers, the
// demo's gate), checks the README's claims about it on the dashboard in
// headless Chromium, checks the one-verdict rule on its pages, and takes
// the README's screenshots from it (PARITY_SCREENSHOTS).
func TestDemoInBrowser(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(readme)), " ")
	for _, claim := range readmeClaims {
		if !strings.Contains(flat, claim) {
			t.Errorf("the README no longer says %q: update this test with it", claim)
		}
	}

	app, err := collector.Start(context.Background(), collector.Options{
		Addr: "127.0.0.1:0", DatabaseURL: testutil.FreshDatabase(t), EmbeddedNATSAddr: "127.0.0.1:-1", DataDir: t.TempDir(),
		DemoRate: demo.DefaultRate, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	// Wait for the gate to decide every segment, then check it decided
	// within a minute of demo traffic: by counting pairs, not by a clock.
	var gate collector.GateView
	testutil.Eventually(t, 3*time.Minute, func() string {
		gate = collector.GateView{}
		if code := getJSON(t, app.URL()+"/api/v1/experiments/"+demo.Experiment+"/gate?per_operation=false", &gate); code != 200 {
			return fmt.Sprintf("gate: HTTP %d", code)
		}
		decided := 0
		for _, s := range gate.Segments {
			if s.Verdict != report.Inconclusive {
				decided++
			}
		}
		if len(gate.Segments) != demo.Segments || decided != demo.Segments {
			return fmt.Sprintf("%d of %d segments decided: %s", decided, len(gate.Segments), gate.Reason)
		}
		return ""
	})
	for _, s := range gate.Segments {
		want := report.Pass
		if s.Segment == demo.DivergentSegment {
			want = report.Fail
		}
		if s.Verdict != want {
			t.Errorf("segment %s: %s, want %s (%s)", s.Segment, s.Verdict, want, s.Reason)
		}
		if s.Divergence.Total > 60*demo.DefaultRate/demo.Segments+demo.DefaultRate {
			t.Errorf("segment %s decided after %d pairs: more than a minute of demo traffic (%d per segment)", s.Segment, s.Divergence.Total, 60*demo.DefaultRate/demo.Segments)
		}
	}
	if gate.Verdict != report.Fail {
		t.Errorf("the demo's gate: %s, want fail on %s", gate.Verdict, demo.DivergentSegment)
	}

	b := page{t, browser(t)}
	b.do("overview", chromedp.Navigate(app.URL()+"/"), chromedp.WaitVisible(`tr[data-experiment="orders-db"]`))
	if got := b.text(`tr[data-experiment="orders-db"] td[data-col="gate"]`); got != "fail" {
		t.Errorf("overview gate %q, want fail", got)
	}
	if got := b.text(`tr[data-experiment="orders-db"] td[data-col="rate"]`); !strings.Contains(got, "limit 1%") {
		t.Errorf("overview rate %q has no limit beside it", got)
	}
	b.screenshot("overview")

	b.do("experiment page", chromedp.Navigate(app.URL()+"/experiments/orders-db"), chromedp.WaitVisible(`#segments`))
	oneVerdict(t, b, "fail")
	rows := b.eval(`Array.from(document.querySelectorAll("#segments tbody tr")).map(r => r.dataset.segment).join(" ")`)
	if n := len(strings.Fields(rows)); n != 8 {
		t.Errorf("segment rows %q: %d, want the README's eight", rows, n)
	}
	cell := func(segment, col string) string {
		return b.text(fmt.Sprintf(`tr[data-segment="%s"] td[data-col="%s"]`, segment, col))
	}
	for _, seg := range strings.Fields(rows) {
		pairs, err1 := strconv.ParseInt(strings.ReplaceAll(cell(seg, "pairs"), ",", ""), 10, 64)
		div, err2 := strconv.ParseInt(strings.ReplaceAll(cell(seg, "divergent"), ",", ""), 10, 64)
		if err1 != nil || err2 != nil || pairs == 0 {
			t.Fatalf("%s: pairs %q divergent %q", seg, cell(seg, "pairs"), cell(seg, "divergent"))
		}
		if pairs >= 1000 && !strings.Contains(cell(seg, "pairs"), ",") {
			t.Errorf("%s: pairs %q without a thousands separator", seg, cell(seg, "pairs"))
		}
		if seg != demo.DivergentSegment {
			if div != 0 || !strings.HasPrefix(cell(seg, "rate"), "0.00%") {
				t.Errorf("%s: %d divergent, rate %q; the README says all the others agree", seg, div, cell(seg, "rate"))
			}
			continue
		}
		// Exactly 8 in every 100: at most 2 off over any number of pairs
		// (the schedule diverges twice in every 25).
		if d := float64(div) - 0.08*float64(pairs); d < -2 || d > 2 {
			t.Errorf("%s: %d divergent of %d pairs, not 8%%", seg, div, pairs)
		}
		if rate := cell(seg, "rate"); !regexp.MustCompile(`^8\.0\d% limit 1%$`).MatchString(rate) {
			t.Errorf("%s: rate %q, want 8.0x%% with its limit", seg, rate)
		}
	}
	if first := b.eval(`document.querySelector('figure[data-chart="rate"]').dataset.segment`); first != demo.DivergentSegment {
		t.Errorf("the first chart is %q, want the offender %s first", first, demo.DivergentSegment)
	}
	if n := b.eval(`String(document.querySelectorAll('figure[data-chart="bounds"]').length)`); n != "8" {
		t.Errorf("%s bounds charts, want one per judged segment", n)
	}
	if note := b.text(`figure[data-chart="bounds"][data-segment="country=IN,plan=pro"] .note`); !strings.HasPrefix(note, "fail: the lower bound") {
		t.Errorf("IN/pro's bounds note %q", note)
	}
	b.screenshot("experiment")

	// The divergent count leads to the samples, a sample to the values that
	// differ, marked in both documents, and back.
	b.do("drill-down", chromedp.Click(`tr[data-segment="country=IN,plan=pro"] td[data-col="divergent"] a`), chromedp.WaitVisible(`#samples`),
		chromedp.Click(`a[href^="/samples/"]`), chromedp.WaitVisible(`#paths mark`))
	if path := b.text(`#paths mark`); path != "items[1].price" {
		t.Errorf("the differing path %q, want the README's items[1].price", path)
	}
	for side, want := range map[string]string{"Control": "550", "Candidate": "549"} {
		if got := b.text(`section[aria-label="` + side + `"] mark[data-path="items[1].price"]`); got != want {
			t.Errorf("%s's marked value %q, want %s", side, got, want)
		}
	}
	if back := b.eval(`document.querySelector('#back').getAttribute('href')`); !strings.HasPrefix(back, "/experiments/orders-db?") {
		t.Errorf("back link %q", back)
	}
	b.screenshot("sample")
	b.do("back", chromedp.Click(`#back`), chromedp.WaitVisible(`#samples`))
}

// oneVerdict checks the one-verdict rule on an experiment page: one gate
// verdict (the header's), the segments' verdicts agree with it, every
// coloured rate has its limit beside it, and each rate's colour is its
// segment's verdict.
func oneVerdict(t *testing.T, b page, want string) {
	t.Helper()
	if got := b.eval(`String(document.querySelectorAll('main .verdict').length)`); got != "1" {
		t.Errorf("%s gate verdicts on the page, want one", got)
	}
	if got := b.text(`#gate-verdict`); got != "gate: "+want {
		t.Errorf("the page's verdict %q, want gate: %s", got, want)
	}
	check := b.eval(`(() => {
		const bad = [];
		const colored = document.querySelectorAll('.rate.pass, .rate.fail, .rate.inconclusive');
		colored.forEach(r => { const l = r.nextElementSibling; if (!l || !l.classList.contains('limit') || !/^limit \d/.test(l.textContent)) bad.push('no limit beside ' + r.textContent); });
		document.querySelectorAll('#segments tbody tr').forEach(tr => {
			const rate = tr.querySelector('td[data-col="rate"] .rate'), v = tr.querySelector('td[data-col="gate"] .seg-verdict');
			if (v && !rate.classList.contains(v.textContent)) bad.push(tr.dataset.segment + ': rate ' + rate.className + ' but verdict ' + v.textContent);
		});
		const verdicts = Array.from(document.querySelectorAll('#segments .seg-verdict')).map(v => v.textContent);
		const header = document.querySelector('#gate-verdict').textContent.replace('gate: ', '');
		if (header === 'fail' && !verdicts.includes('fail')) bad.push('the page fails but no segment does');
		if (header === 'pass' && verdicts.some(v => v !== 'pass')) bad.push('the page passes but a segment does not');
		if (colored.length === 0) bad.push('no coloured rate');
		return bad.join('; ');
	})()`)
	if check != "" {
		t.Errorf("one-verdict rule: %s", check)
	}
}
