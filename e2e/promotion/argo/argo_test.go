package argo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/analysis"
	"github.com/argoproj/argo-rollouts/controller/metrics"
	"github.com/argoproj/argo-rollouts/metricproviders"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/pkg/client/clientset/versioned/fake"
	informers "github.com/argoproj/argo-rollouts/pkg/client/informers/externalversions"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	"github.com/argoproj/argo-rollouts/utils/queue"
	"github.com/argoproj/argo-rollouts/utils/record"
	log "github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/util/workqueue"

	"github.com/parityhq/parity/internal/collector/collectortest"
	"github.com/parityhq/parity/internal/testutil"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // Argo's controller logs every reconcile
	os.Exit(m.Run())
}

const (
	namespace = "shop"
	// canaryHash stands for the canary's pod template hash, which Argo
	// passes as the revision argument.
	canaryHash = "7c9d5f8b4"
)

// stepArgs builds the arguments of the documented Rollout's analysis step as
// Argo does when it starts the step (the pod template hash of the new
// ReplicaSet for podTemplateHashValue: Latest).
func stepArgs(t *testing.T, d documented) (*v1alpha1.RolloutAnalysis, []v1alpha1.Argument) {
	t.Helper()
	var step *v1alpha1.RolloutAnalysis
	for _, s := range stepAnalyses(t, d) {
		step = s
	}
	rs := func(hash string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{v1alpha1.DefaultRolloutUniqueLabelKey: hash}}}
	}
	args, err := analysisutil.BuildArgumentsForRolloutAnalysisRun(step.Args, rs("5f6d8c9b7"), rs(canaryHash), d.rollout)
	if err != nil {
		t.Fatal(err)
	}
	return step, args
}

// analysisRun is the AnalysisRun Argo creates for the documented step, with
// the collector at base instead of the documented address.
func analysisRun(t *testing.T, d documented, base, name string) *v1alpha1.AnalysisRun {
	t.Helper()
	step, args := stepArgs(t, d)
	run, err := analysisutil.NewAnalysisRunFromTemplates([]*v1alpha1.AnalysisTemplate{d.template.DeepCopy()}, nil, args,
		step.DryRun, step.MeasurementRetention, map[string]string{}, map[string]string{}, name, "", namespace)
	if err != nil {
		t.Fatal(err)
	}
	for i := range run.Spec.Metrics {
		web := run.Spec.Metrics[i].Provider.Web
		if !strings.HasPrefix(web.URL, docsHost+"/") {
			t.Fatalf("documented URL %q is not on %s", web.URL, docsHost)
		}
		web.URL = base + strings.TrimPrefix(web.URL, docsHost)
	}
	return run
}

// gateSecret is the documented Secret holding the viewer token.
func gateSecret(d documented, tok string) *corev1.Secret {
	for _, a := range d.template.Spec.Args {
		if a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil {
			ref := a.ValueFrom.SecretKeyRef
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: namespace},
				Data: map[string][]byte{ref.Key: []byte(tok)}}
		}
	}
	return nil
}

// argoLook takes one measurement of the documented metric with Argo's own
// web metric provider, resolving the arguments (the token from the Secret)
// as Argo's controller does.
func argoLook(t *testing.T, d documented, base, tok string) v1alpha1.Measurement {
	t.Helper()
	run := analysisRun(t, d, base, "look")
	args := make([]v1alpha1.Argument, 0, len(run.Spec.Args))
	for _, a := range run.Spec.Args {
		if a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil {
			a = v1alpha1.Argument{Name: a.Name, Value: &tok}
		}
		args = append(args, a)
	}
	metric, err := analysisutil.ResolveMetricArgs(run.Spec.Metrics[0], args)
	if err != nil {
		t.Fatal(err)
	}
	f := metricproviders.ProviderFactory{KubeClient: k8sfake.NewSimpleClientset()}
	p, err := f.NewProvider(*log.NewEntry(log.StandardLogger()), namespace, *metric)
	if err != nil {
		t.Fatal(err)
	}
	return p.Run(run, *metric)
}

// argoRun runs Argo's own analysis controller, on fake Kubernetes clients,
// over the documented step's AnalysisRun against base, and returns the run
// once it has completed.
//
// The metric's interval is shortened to spacing: Argo decides on the number
// and kind of measurements (count, consecutiveSuccessLimit, failureLimit,
// inconclusiveLimit, consecutiveErrorLimit), never on the time between them.
func argoRun(t *testing.T, d documented, base, tok string, spacing time.Duration) *v1alpha1.AnalysisRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewSimpleClientset()
	kube := k8sfake.NewSimpleClientset(gateSecret(d, tok))
	inf := informers.NewSharedInformerFactory(client, 0)
	kinf := kubeinformers.NewSharedInformerFactory(kube, 0)
	q := workqueue.NewNamedRateLimitingQueue(queue.DefaultArgoRolloutsRateLimiter(), "AnalysisRuns")
	c := analysis.NewController(analysis.ControllerConfig{
		KubeClientSet:        kube,
		ArgoProjClientset:    client,
		AnalysisRunInformer:  inf.Argoproj().V1alpha1().AnalysisRuns(),
		JobInformer:          kinf.Batch().V1().Jobs(),
		JobPodsInformer:      kinf.Core().V1().Pods(),
		AnalysisRunWorkQueue: q,
		MetricsServer: metrics.NewMetricsServer(metrics.ServerConfig{Addr: "127.0.0.1:0",
			K8SRequestProvider: &metrics.K8sRequestsCountProvider{}}),
		Recorder: record.NewFakeEventRecorder(),
	})
	inf.Start(ctx.Done())
	kinf.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx, 1) })
	// Argo's workers return once their queue is shut down, as the
	// controller's manager does on exit.
	t.Cleanup(func() { cancel(); q.ShutDown(); wg.Wait() })

	run := analysisRun(t, d, base, "parity-gate-"+canaryHash)
	run.Spec.Metrics[0].Interval = v1alpha1.DurationString(spacing.String())
	if _, err := client.ArgoprojV1alpha1().AnalysisRuns(namespace).Create(ctx, run, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var done *v1alpha1.AnalysisRun
	testutil.Eventually(t, 60*time.Second, func() string {
		r, err := client.ArgoprojV1alpha1().AnalysisRuns(namespace).Get(ctx, run.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if !r.Status.Phase.Completed() {
			return fmt.Sprintf("analysis %s", r.Status.Phase)
		}
		done = r
		return ""
	})
	return done
}

// answer is one reply of a scripted gate.
type answer struct {
	name   string
	status int
	body   []byte
}

// scripted serves answers in order, checking each request carries the token,
// and counts the requests; past the script it answers 500.
type scripted struct {
	t       *testing.T
	tok     string
	answers []answer
	mu      sync.Mutex
	asked   int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := s.asked
	s.asked++
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.tok {
		s.t.Errorf("look %d: Authorization %q, want the Secret's token", i, r.Header.Get("Authorization"))
	}
	if !strings.Contains(r.URL.RawQuery, "analysis=argo-"+canaryHash) {
		s.t.Errorf("look %d: query %q does not name the analysis", i, r.URL.RawQuery)
	}
	if i >= len(s.answers) {
		http.Error(w, "past the script", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.answers[i].status)
	_, _ = w.Write(s.answers[i].body)
}

// TestArgoAgainstCollector asks a live collector with Argo's own web metric
// provider at each stage of an experiment, then replays sequences of those
// real answers through Argo's own analysis controller.
func TestArgoAgainstCollector(t *testing.T) {
	d := readDocs(t)
	l := collectortest.Start(t)
	const exp = "orders-db" // the experiment the documented Rollout names
	l.SetGate(t, exp, `{"max_rate": 0.05, "min_pairs": 500, "per_segment": true}`)
	real := map[string]answer{}
	look := func(stage string, want v1alpha1.AnalysisPhase) {
		t.Helper()
		m := argoLook(t, d, l.URL(), l.Viewer)
		if m.Phase != want {
			t.Fatalf("%s: Argo measured %s (%s), want %s", stage, m.Phase, m.Message, want)
		}
		code, body := l.Call(t, http.MethodGet, "/api/v1/experiments/"+exp+"/gate?analysis=argo-"+canaryHash, l.Viewer, "")
		real[stage] = answer{stage, code, body}
	}
	// Before the first pair: inconclusive, where a 404 was an Argo error.
	look("no pairs", v1alpha1.AnalysisPhaseInconclusive)
	if !strings.Contains(string(real["no pairs"].body), `"no_pairs":true`) {
		t.Errorf("no-pairs answer lacks no_pairs: %s", real["no pairs"].body)
	}
	l.Send(t, exp, 0, 50, 0, 50)
	look("inconclusive", v1alpha1.AnalysisPhaseInconclusive) // 50 clean pairs < min_pairs
	l.Send(t, exp, 50, 1950, 0, 2000)
	look("pass", v1alpha1.AnalysisPhaseSuccessful)

	const bad = "payments-db"
	l.SetGate(t, bad, `{"max_rate": 0.05, "min_pairs": 500, "per_segment": true}`)
	lookBad := func() v1alpha1.Measurement {
		dd := d
		tmpl := d.template.DeepCopy()
		tmpl.Spec.Metrics[0].Provider.Web.URL = strings.Replace(tmpl.Spec.Metrics[0].Provider.Web.URL, "{{args.experiment}}", bad, 1)
		dd.template = tmpl
		return argoLook(t, dd, l.URL(), l.Viewer)
	}
	// The analysis's first look anchors it, before the canary's pairs.
	if m := lookBad(); m.Phase != v1alpha1.AnalysisPhaseInconclusive {
		t.Fatalf("payments-db before its pairs: Argo measured %s (%s), want Inconclusive", m.Phase, m.Message)
	}
	l.Send(t, bad, 0, 400, 2, 400) // half diverge
	m := lookBad()
	if m.Phase != v1alpha1.AnalysisPhaseFailed {
		t.Fatalf("half divergent: Argo measured %s (%s), want Failed", m.Phase, m.Message)
	}
	code, body := l.Call(t, http.MethodGet, "/api/v1/experiments/"+bad+"/gate?analysis=argo-"+canaryHash, l.Viewer, "")
	real["fail"] = answer{"fail", code, body}
	for stage, a := range real {
		if a.status != http.StatusOK {
			t.Fatalf("%s: the gate answered %d %s, want 200", stage, a.status, a.body)
		}
	}
	if got := collectortest.Verdict(t, real["fail"].body); got != "fail" {
		t.Fatalf("payments-db verdict %q, want fail", got)
	}

	// The same answers, in the orders a rollout meets them, through Argo's
	// analysis controller with the documented limits.
	unavailable := answer{"503", http.StatusServiceUnavailable, []byte(`{"message":"unavailable"}`)}
	notFound := answer{"404", http.StatusNotFound, []byte(`{"message":"experiment orders-db not found"}`)}
	repeat := func(a answer, n int) []answer {
		out := make([]answer, n)
		for i := range out {
			out[i] = a
		}
		return out
	}
	count := d.template.Spec.Metrics[0].Count.IntValue()
	tests := []struct {
		name    string
		answers []answer
		phase   v1alpha1.AnalysisPhase
		looks   int
	}{
		{"the first pass completes the step", []answer{real["pass"]}, v1alpha1.AnalysisPhaseSuccessful, 1},
		{"no pairs, then not enough, then a pass", []answer{real["no pairs"], real["inconclusive"], real["pass"]}, v1alpha1.AnalysisPhaseSuccessful, 3},
		{"the first fail aborts", []answer{real["no pairs"], real["inconclusive"], real["fail"]}, v1alpha1.AnalysisPhaseFailed, 3},
		{"a pass after many inconclusive looks", append(repeat(real["inconclusive"], count-1), real["pass"]), v1alpha1.AnalysisPhaseSuccessful, count},
		{"inconclusive at every look: a person decides", repeat(real["inconclusive"], count), v1alpha1.AnalysisPhaseInconclusive, count},
		{"a collector down for five looks", append([]answer{real["no pairs"]}, repeat(unavailable, 5)...), v1alpha1.AnalysisPhaseError, 6},
		{"before the fix: 404 until the first pair", repeat(notFound, 5), v1alpha1.AnalysisPhaseError, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{t: t, tok: l.Viewer, answers: tt.answers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			// Looks spaced well apart that the informer sees each status
			// before the next reconcile, as with Argo's minutes.
			run := argoRun(t, d, srv.URL, l.Viewer, 300*time.Millisecond)
			res := run.Status.MetricResults
			// Argo counts a measurement that errs in Error, not in Count.
			if run.Status.Phase != tt.phase || len(res) != 1 || int(res[0].Count+res[0].Error) != tt.looks {
				t.Errorf("analysis %s after %+v (%s), want %s after %d looks", run.Status.Phase, res, run.Status.Message, tt.phase, tt.looks)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.asked != tt.looks {
				t.Errorf("the gate was asked %d times, want %d", s.asked, tt.looks)
			}
		})
	}
}
