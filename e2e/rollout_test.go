package e2e

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parityhq/parity/examples/rollout/scenario"
	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
)

// grace is how long a change of the rollout may take to reach the service:
// a controller tick, the KV watch, and requests already under way.
const grace = 2 * time.Second

// TestClosedLoopRollout is the scenario, as `make rollout-demo`
// runs it: the orders service under load, a bug in IN on the new read
// path, the controller advancing, stepping back on the breach, and after
// the fix advancing to complete. It asserts on the audit log and on the
// stages the service's users actually got.
func TestClosedLoopRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const operator = "rollout-operator-token-0123456789"
	res, err := scenario.Run(ctx, scenario.Config{
		OperatorToken: operator, Linger: func(dashboard string) { rolloutInBrowser(t, dashboard, operator) },
		DatabaseURL: testutil.FreshDatabase(t), OldURL: testutil.FreshDatabase(t), NewURL: testutil.FreshDatabase(t),
		AdminURL: testutil.PostgresURL(), Addr: "127.0.0.1:0", AppAddr: "127.0.0.1:0", EmbeddedNATSAddr: "127.0.0.1:-1",
		DataDir: t.TempDir(), Rate: 200, Users: 300, Hold: 2 * time.Second, Interval: 250 * time.Millisecond, Settle: 2 * time.Second,
		Timeout: 3 * time.Minute, Progress: func(s string) { t.Log(s) }, Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}

	// The audit log, entry by entry.
	type entry struct {
		action, cause string
		from, to      int
	}
	want := []entry{
		{controller.ActionPlan, controller.CauseManual, 0, 0},
		{controller.ActionResume, controller.CauseManual, 0, 0},
		{controller.ActionPromote, controller.CauseGatePassed, 0, 1},
		{controller.ActionPromote, controller.CauseGatePassed, 1, 2},
		{controller.ActionPromote, controller.CauseGatePassed, 2, 3},
		{controller.ActionRollback, controller.CauseGateFailed, 3, 2},
		{controller.ActionResume, controller.CauseManual, 2, 2},
		{controller.ActionPromote, controller.CauseGatePassed, 2, 3},
		{controller.ActionPromote, controller.CauseGatePassed, 3, 4},
		{controller.ActionPromote, controller.CauseGatePassed, 4, 5},
		{controller.ActionPromote, controller.CauseGatePassed, 5, 6},
		{controller.ActionPromote, controller.CauseGatePassed, 6, 7},
	}
	var got []entry
	for _, e := range res.Events {
		got = append(got, entry{e.Action, e.Cause, e.FromStep, e.ToStep})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log:\n got %v\nwant %v", got, want)
	}
	ev := res.Events
	breach, resumed, complete := ev[5], ev[6], ev[11]
	if breach.Actor != controller.ControllerActor || !strings.Contains(breach.Reason, "country=IN") ||
		!strings.Contains(string(breach.Detail), "country=IN") || strings.Contains(string(breach.Detail), "country=US") {
		t.Errorf("the breach entry does not name IN alone: %+v", breach)
	}
	if resumed.Actor == controller.ControllerActor || !strings.Contains(resumed.Reason, "fixed") {
		t.Errorf("the resume after the fix: %+v", resumed)
	}
	if breach.Status != "paused" || complete.Status != "active" {
		t.Errorf("statuses: breach %s, complete %s", breach.Status, complete.Status)
	}

	tgroup := map[string]bool{}
	for _, u := range scenario.TestingGroup {
		tgroup[u] = true
	}
	in := func(lo, hi time.Time, at time.Time) bool { return !at.Before(lo) && at.Before(hi) }
	firstLive := map[bool]time.Time{} // by "is in the testing group"
	lastStage := map[string]envelope.Stage{}
	// Who was live in three windows: the first 10% step (until the
	// breach), the second 10% step, and the 50% step.
	type window struct {
		from, to   time.Time
		seen, live map[string]bool
	}
	settle := 500 * time.Millisecond
	windows := []*window{{from: ev[4].At.Add(settle), to: breach.At}, {from: ev[7].At.Add(settle), to: ev[8].At}, {from: ev[8].At.Add(settle), to: ev[9].At}}
	for _, w := range windows {
		w.seen, w.live = map[string]bool{}, map[string]bool{}
	}
	inLiveBefore := 0
	for _, e := range res.Evals {
		tg := tgroup[e.User]
		if e.Stage == envelope.StageLive && (firstLive[tg].IsZero() || e.At.Before(firstLive[tg])) {
			firstLive[tg] = e.At
		}
		// Past rampdown, never back to a stage where the old store is
		// authoritative.
		if prev := lastStage[e.User]; (prev == envelope.StageRampDown || prev == envelope.StageComplete) &&
			e.Stage != envelope.StageRampDown && e.Stage != envelope.StageComplete {
			t.Errorf("user %s went from %s back to %s at %s", e.User, prev, e.Stage, e.At.Format(time.StampMilli))
		}
		lastStage[e.User] = e.Stage
		// Nobody reads the new store before everyone dual-writes.
		if e.Stage != envelope.StageOff && e.Stage != envelope.StageDualWrite && e.At.Before(ev[2].At) {
			t.Errorf("user %s got %s before the dual-write step", e.User, e.Stage)
		}
		if tg {
			continue
		}
		// After the breach, no IN user reads from the new path until the
		// fix is resumed.
		if res.Country[e.User] == scenario.BugCountry && e.Stage == envelope.StageLive {
			if in(breach.At.Add(grace), resumed.At, e.At) {
				t.Errorf("IN user %s got live at %s, after the rollback at %s", e.User, e.At.Format(time.StampMilli), breach.At.Format(time.StampMilli))
			}
			if e.At.Before(breach.At) {
				inLiveBefore++
			}
		}
		for _, w := range windows {
			if in(w.from, w.to, e.At) {
				w.seen[e.User] = true
				w.live[e.User] = w.live[e.User] || e.Stage == envelope.StageLive
			}
		}
		if e.At.After(complete.At.Add(grace)) && e.Stage != envelope.StageComplete {
			t.Errorf("user %s got %s after the rollout completed", e.User, e.Stage)
		}
	}
	if firstLive[true].IsZero() || firstLive[false].IsZero() || !firstLive[true].Before(firstLive[false]) {
		t.Errorf("the testing group went live at %v, everyone else at %v: the testing group must be first", firstLive[true], firstLive[false])
	}
	if inLiveBefore == 0 {
		t.Error("no IN user was live before the breach: the breach had no evidence")
	}
	// Sticky across the rollback: a user live in the first 10% step is live
	// again in the second. Monotonic: a user live at 10% is live at 50%.
	// And the percentages are about right.
	for i, pair := range [][2]*window{{windows[0], windows[1]}, {windows[1], windows[2]}} {
		checked := 0
		for u, live := range pair[0].live {
			if !live || !pair[1].seen[u] {
				continue
			}
			checked++
			if !pair[1].live[u] {
				t.Errorf("user %s was live in window %d but not in window %d", u, i, i+1)
			}
		}
		t.Logf("windows %d → %d: %d users live in the first and seen in the second", i, i+1, checked)
	}
	for i, want := range []float64{10, 10, 50} {
		w := windows[i]
		live := 0
		for u := range w.seen {
			if w.live[u] {
				live++
			}
		}
		f := 100 * float64(live) / float64(max(len(w.seen), 1))
		t.Logf("window %d: %d of %d users live (%.1f%%, plan %v%%)", i, live, len(w.seen), f, want)
		if i > 0 && (len(w.seen) < 100 || f < want/3 || f > want*2) {
			t.Errorf("window %d: %d of %d users live, far from the plan's %v%%", i, live, len(w.seen), want)
		}
	}
	t.Logf("%d evaluations", len(res.Evals))
}

// rolloutInBrowser checks, in headless Chromium, that the experiment page
// shows the completed rollout and its timeline, and that an operator signed
// in with a session can act on it from the page (a CSRF-checked form).
func rolloutInBrowser(t *testing.T, dashboard, token string) {
	b := page{t, browser(t)}
	b.do("sign in", chromedp.Navigate(dashboard+"/login?next=/experiments/"+scenario.Experiment),
		chromedp.WaitVisible(`#token`), chromedp.SendKeys(`#token`, token), chromedp.Submit(`#token`),
		chromedp.WaitVisible(`#rollout`))
	if got := b.text(`#rollout-step`); got != "7" {
		t.Errorf("the page shows step %q, want 7", got)
	}
	if got := b.text(`#rollout-status`); got != "active" {
		t.Errorf("the page shows status %q, want active", got)
	}
	if got := b.eval(`String(document.querySelectorAll('#rollout-events tr[data-cause="gate_failed"]').length)`); got != "1" {
		t.Errorf("%s gate_failed rows in the timeline, want 1", got)
	}
	if row := b.text(`#rollout-events tr[data-cause="gate_failed"]`); !strings.Contains(row, "country=IN") {
		t.Errorf("the breach row does not name IN: %q", row)
	}
	// One verdict on the page: the rollout section does not repeat the gate.
	oneVerdict(t, b, strings.TrimPrefix(b.text(`#gate-verdict`), "gate: "))
	b.screenshot("rollout")
	b.do("pause from the page", chromedp.SendKeys(`#rollout-reason`, "checking the dashboard"),
		chromedp.Click(`#rollout-actions button[formaction$="/pause"]`),
		chromedp.WaitVisible(`#rollout-events tr[data-action="pause"]`))
	if got := b.text(`#rollout-status`); got != "paused" {
		t.Errorf("after Pause the page shows %q", got)
	}
	if row := b.text(`#rollout-events tr[data-action="pause"]`); !strings.Contains(row, "operator-token[0]") || !strings.Contains(row, "checking the dashboard") {
		t.Errorf("the pause row: %q", row)
	}
}

// tlog writes a logger's lines to the test's log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
