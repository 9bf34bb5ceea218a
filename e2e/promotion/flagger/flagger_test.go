package flagger

import (
	"strings"
	"testing"

	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	flagger "github.com/fluxcd/flagger/pkg/controller"

	"github.com/parityhq/parity/internal/collector/collectortest"
)

// flaggerHooks returns the documented Canary's confirm-promotion and rollback
// webhooks, pointed at base for experiment and carrying tok.
func flaggerHooks(t *testing.T, c *flaggerv1.Canary, base, experiment, tok string) (confirm, rollback flaggerv1.CanaryWebhook) {
	t.Helper()
	for _, w := range c.GetAnalysis().Webhooks {
		if !strings.HasPrefix(w.URL, docsHost+"/") {
			t.Fatalf("documented webhook URL %q is not on %s", w.URL, docsHost)
		}
		w.URL = base + strings.Replace(strings.TrimPrefix(w.URL, docsHost), "/orders-db/", "/"+experiment+"/", 1)
		if w.Metadata == nil || (*w.Metadata)["token"] == "" {
			t.Fatalf("webhook %s carries no metadata.token", w.Name)
		}
		w.Metadata = &map[string]string{"token": tok}
		switch w.Type {
		case flaggerv1.ConfirmPromotionHook:
			confirm = w
		case flaggerv1.RollbackHook:
			rollback = w
		}
	}
	if confirm.URL == "" || rollback.URL == "" {
		t.Fatalf("the documented Canary needs a confirm-promotion and a rollback webhook: %+v", c.GetAnalysis().Webhooks)
	}
	return confirm, rollback
}

// flaggerDecides calls both webhooks with Flagger's own webhook client and
// applies Flagger's rules (pkg/controller/scheduler_hooks.go): a
// confirm-promotion hook promotes only when the call succeeds (any status up
// to 202), a rollback hook rolls back when it succeeds.
func flaggerDecides(t *testing.T, c flaggerv1.Canary, confirm, rollback flaggerv1.CanaryWebhook) (promote, rollBack bool, holdReason string) {
	t.Helper()
	rbErr := flagger.CallWebhook(c, flaggerv1.CanaryPhaseProgressing, rollback)
	cpErr := flagger.CallWebhook(c, flaggerv1.CanaryPhaseProgressing, confirm)
	if cpErr != nil {
		holdReason = cpErr.Error()
	}
	return cpErr == nil, rbErr == nil, holdReason
}

// TestFlaggerAgainstCollector drives the documented Canary's webhooks with
// Flagger's webhook client against a live collector, at each stage of an
// experiment.
func TestFlaggerAgainstCollector(t *testing.T) {
	doc := readCanary(t)
	l := collectortest.Start(t)
	spec := `{"max_rate": 0.05, "min_pairs": 500, "per_segment": true}`
	l.SetGate(t, "orders-db", spec)
	l.SetGate(t, "payments-db", spec)
	canary := *doc.DeepCopy()
	canary.Status.LastAppliedSpec = "orders-v2" // what Flagger's checksum covers

	stage := func(name, experiment string, wantPromote, wantRollback bool) {
		t.Helper()
		confirm, rollback := flaggerHooks(t, doc, l.URL(), experiment, l.Viewer)
		promote, rollBack, why := flaggerDecides(t, canary, confirm, rollback)
		if promote != wantPromote || rollBack != wantRollback {
			t.Errorf("%s: Flagger would promote %v, roll back %v (%s); want %v, %v", name, promote, rollBack, why, wantPromote, wantRollback)
		}
		if !promote && !strings.Contains(why, `"verdict"`) {
			t.Errorf("%s: a held promotion shows %q, not the verdict", name, why)
		}
		// The verdict is anchored at the first look of this canary revision.
		if !promote && !strings.Contains(why, `"analysis":"flagger/shop/orders/`) {
			t.Errorf("%s: the verdict is not anchored on the canary's checksum: %s", name, why)
		}
	}
	stage("no pairs yet", "orders-db", false, false)
	l.Send(t, "orders-db", 0, 50, 0, 50)
	stage("too few pairs", "orders-db", false, false)
	l.Send(t, "orders-db", 50, 1950, 0, 2000)
	stage("clean", "orders-db", true, false)
	stage("another canary, no pairs yet", "payments-db", false, false) // anchors its analysis
	l.Send(t, "payments-db", 0, 400, 2, 400)
	stage("half divergent", "payments-db", false, true)

	// A wrong token never rolls back, nor promotes.
	confirm, rollback := flaggerHooks(t, doc, l.URL(), "payments-db", collectortest.Token(t))
	if promote, rollBack, _ := flaggerDecides(t, canary, confirm, rollback); promote || rollBack {
		t.Errorf("with a wrong token Flagger would promote %v, roll back %v", promote, rollBack)
	}
}
