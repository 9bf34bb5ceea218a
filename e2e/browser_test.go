package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/publish"
)

// chromium finds Debian's Chromium; .ci/run installs it when missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install Debian's chromium package (apt-get install chromium) or run bash .ci/run")
	return ""
}

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// page drives one browser tab; its methods fail the test on any error.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("browser: %s: %v", what, err)
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(sel))
	if err != nil {
		p.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (p page) eval(js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("browser: %s: %v", js, err)
	}
	return s
}

// screenshot saves the page when PARITY_SCREENSHOTS names a directory (the
// README's pictures are made this way).
func (p page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("PARITY_SCREENSHOTS")
	if dir == "" {
		return
	}
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// TestDashboardInBrowser loads the dashboard in headless Chromium over real
// data: the segment table's numbers, the operation filter, and the drill-down
// from a divergent count to a sample with its differing path highlighted.
func TestDashboardInBrowser(t *testing.T) {
	const experiment = "e2e-ui"
	app, nc := startSystem(t, "ingest-token-0123456789")
	pub, err := publish.New(nc, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]counts{}
	now := time.Now().UTC()
	const n = 400
	for i := range n {
		p, divergent := makePair(experiment, i, now)
		if i%4 == 1 { // the US segment's pairs belong to a second operation
			p.Operation = "ListOrders"
		}
		key := "country=" + p.User.Attrs["country"] + ",plan=" + p.User.Attrs["plan"]
		c := want[key]
		c.pairs++
		if divergent {
			c.divergent++
		}
		want[key] = c
		pub.Publish(p)
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string { return sameCounts(apiCounts(t, app, experiment), want) })

	b := page{t, browser(t)}
	cell := func(segment, col string) string {
		return fmt.Sprintf(`tr[data-segment="%s"] td[data-col="%s"]`, segment, col)
	}
	link := `a[href="/experiments/` + experiment + `"]`
	b.do("overview", chromedp.Navigate(app.URL()+"/"), chromedp.WaitVisible(link))
	if overview := b.text("main"); !strings.Contains(overview, experiment) {
		t.Errorf("overview lacks %s: %q", experiment, overview)
	}

	b.do("experiment page", chromedp.Click(link), chromedp.WaitVisible(`#segments`),
		chromedp.SetValue(`#window`, "all"), chromedp.Click(`form.filters button`),
		chromedp.WaitReady(`#window option[value="all"][selected]`))
	br, in := want["country=BR,plan=free"], want["country=IN,plan=pro"]
	if got := b.text(cell("country=BR,plan=free", "pairs")); got != fmt.Sprint(br.pairs) {
		t.Errorf("BR pairs %q, want %d", got, br.pairs)
	}
	// The rate, coloured by the segment's verdict, with the default gate's
	// limit beside it.
	if got, want := b.text(cell("country=BR,plan=free", "rate")), fmt.Sprintf("%.2f%% limit 0.1%%", 100*float64(br.divergent)/float64(br.pairs)); got != want {
		t.Errorf("BR rate %q, want %q", got, want)
	}
	if got := b.text(cell("country=IN,plan=pro", "divergent")); got != fmt.Sprint(in.divergent) {
		t.Errorf("IN divergent %q, want %d", got, in.divergent)
	}
	rowsJS := `Array.from(document.querySelectorAll("#segments tbody tr")).map(r => r.dataset.segment).join(" ")`
	if got := b.eval(rowsJS); strings.Count(got, "country=") != 4 {
		t.Errorf("segment table rows %q, want 4 segments", got)
	}

	// The operation filter narrows the table to the US segment's operation.
	// The new page's table is parsed after its filter form: wait for its
	// rows too, not only for the form.
	b.do("filter", chromedp.SetValue(`#operation`, "ListOrders"), chromedp.Click(`form.filters button`),
		chromedp.WaitReady(`#operation option[value="ListOrders"][selected]`), chromedp.WaitReady(`#segments tbody tr`))
	if got := b.eval(rowsJS); got != "country=US,plan=free" {
		t.Errorf("filtered table shows %q, want only country=US,plan=free", got)
	}

	// Drill down: a divergent count links to the segment's samples, and a
	// sample highlights the differing path.
	b.do("drill-down", chromedp.SetValue(`#operation`, ""), chromedp.Click(`form.filters button`),
		chromedp.WaitReady(`#operation option[value=""][selected]`),
		chromedp.Click(cell("country=IN,plan=pro", "divergent")+` a`), chromedp.WaitVisible(`#samples`),
		chromedp.Click(`a[href^="/samples/"]`), chromedp.WaitVisible(`#paths mark`))
	if path := b.text(`#paths mark`); path != "items[1].price" {
		t.Errorf("highlighted path %q, want items[1].price", path)
	}
	if cand := b.text(`section[aria-label="Candidate"] pre`); !strings.Contains(cand, "249") {
		t.Errorf("candidate %q lacks the differing value", cand)
	}
}
