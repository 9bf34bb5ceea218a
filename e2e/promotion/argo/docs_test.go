package argo

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/validation"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	"sigs.k8s.io/yaml"
)

// docsPath is the document whose examples these tests run.
const docsPath = "../../../docs/promotion.md"

// docsHost is the collector's address in the documented examples; tests
// point it at a collector they start.
const docsHost = "http://parity-collector.parity.svc:8080"

// documented holds Argo's objects in docs/promotion.md, each decoded
// strictly with Argo's own type.
type documented struct {
	template *v1alpha1.AnalysisTemplate
	rollout  *v1alpha1.Rollout
}

// otherTools are the kinds of docs/promotion.md another test module decodes
// with its tool's types (e2e/promotion/flagger).
var otherTools = []string{"flagger.app/v1beta1 Canary"}

// yamlBlocks returns the ```yaml blocks of a Markdown document.
func yamlBlocks(t *testing.T, md []byte) [][]byte {
	t.Helper()
	var blocks [][]byte
	var cur *bytes.Buffer
	for line := range strings.Lines(string(md)) {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```yaml":
			cur = &bytes.Buffer{}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, cur.Bytes())
			cur = nil
		case cur != nil:
			cur.WriteString(line)
		}
	}
	if cur != nil {
		t.Fatalf("%s: a yaml block is not closed", docsPath)
	}
	return blocks
}

// decodeStrict decodes one YAML document into v, refusing unknown and
// duplicate fields, as `kubectl apply --validate=strict` does.
func decodeStrict(b []byte, v any) error {
	return yaml.UnmarshalStrict(b, v)
}

// decodeDocs decodes every YAML block of md by its kind.
func decodeDocs(t *testing.T, md []byte) (documented, error) {
	t.Helper()
	var d documented
	for i, b := range yamlBlocks(t, md) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(b, &head); err != nil {
			return d, fmt.Errorf("block %d: %w", i, err)
		}
		var err error
		switch head.APIVersion + " " + head.Kind {
		case "argoproj.io/v1alpha1 AnalysisTemplate":
			d.template = &v1alpha1.AnalysisTemplate{}
			err = decodeStrict(b, d.template)
		case "argoproj.io/v1alpha1 Rollout":
			d.rollout = &v1alpha1.Rollout{}
			err = decodeStrict(b, d.rollout)
		default:
			if slices.Contains(otherTools, head.APIVersion+" "+head.Kind) {
				continue
			}
			err = fmt.Errorf("%q %q is no object this test knows: every yaml block must be a whole object", head.APIVersion, head.Kind)
		}
		if err != nil {
			return d, fmt.Errorf("block %d (%s): %w", i, head.Kind, err)
		}
	}
	if d.template == nil || d.rollout == nil {
		return d, fmt.Errorf("want an AnalysisTemplate and a Rollout, got %+v", d)
	}
	return d, nil
}

func readDocs(t *testing.T) documented {
	t.Helper()
	md, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeDocs(t, md)
	if err != nil {
		t.Fatalf("%s: %v", docsPath, err)
	}
	return d
}

// TestDocsDecodeStrictly: every YAML block of docs/promotion.md is a whole
// object its tool's Go type decodes with no unknown field, and a misspelt
// field is refused (so the strictness is real).
func TestDocsDecodeStrictly(t *testing.T) {
	md, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeDocs(t, md); err != nil {
		t.Fatalf("%s: %v", docsPath, err)
	}
	for _, typo := range []struct{ from, to string }{
		{"consecutiveSuccessLimit:", "consecutiveSucessLimit:"},
		{"podTemplateHashValue:", "podTemplateHash:"},
	} {
		bad := bytes.Replace(md, []byte(typo.from), []byte(typo.to), 1)
		if bytes.Equal(bad, md) {
			t.Fatalf("the docs no longer contain %q", typo.from)
		}
		if _, err := decodeDocs(t, bad); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%q misspelt as %q: %v, want an unknown field error", typo.from, typo.to, err)
		}
	}
}

// TestArgoValidatesDocs runs Argo Rollouts' own validation on the documented
// Rollout and on the AnalysisTemplate as its canary step uses it — the check
// that refused the earlier template ("runs indefinitely").
func TestArgoValidatesDocs(t *testing.T) {
	d := readDocs(t)
	if errs := validation.ValidateRollout(d.rollout); len(errs) > 0 {
		t.Errorf("Argo refuses the Rollout: %v", errs.ToAggregate())
	}
	if err := analysisutil.ValidateMetrics(d.template.Spec.Metrics); err != nil {
		t.Errorf("Argo refuses the template's metrics: %v", err)
	}
	steps := stepAnalyses(t, d)
	for i, step := range steps {
		if errs := validateStep(d.rollout, d.template, i, step); len(errs) > 0 {
			t.Errorf("Argo refuses the template in step %d: %v", i, errs)
		}
	}

	// The same template without a count is what Argo refused before.
	old := d.template.DeepCopy()
	old.Spec.Metrics[0].Count = nil
	for i, step := range steps {
		errs := validateStep(d.rollout, old, i, step)
		if len(errs) == 0 || !strings.Contains(errs[0], "runs indefinitely") {
			t.Errorf("a template without count in step %d: %v, want Argo's \"runs indefinitely\" refusal", i, errs)
		}
	}
}

// stepAnalyses returns the canary steps that run the documented template, by
// step index.
func stepAnalyses(t *testing.T, d documented) map[int]*v1alpha1.RolloutAnalysis {
	t.Helper()
	out := map[int]*v1alpha1.RolloutAnalysis{}
	for i, s := range d.rollout.Spec.Strategy.Canary.Steps {
		if s.Analysis == nil {
			continue
		}
		for _, tr := range s.Analysis.Templates {
			if tr.TemplateName != d.template.Name {
				t.Errorf("step %d uses template %q, not the documented %q", i, tr.TemplateName, d.template.Name)
			}
		}
		out[i] = s.Analysis
	}
	if len(out) == 0 {
		t.Fatal("the documented Rollout runs no analysis step")
	}
	return out
}

// validateStep runs Argo's reference validation of a template used inline in
// canary step i, and checks that the step gives every argument the template
// leaves open (Argo checks that only when the run is created).
func validateStep(r *v1alpha1.Rollout, tmpl *v1alpha1.AnalysisTemplate, i int, step *v1alpha1.RolloutAnalysis) []string {
	var out []string
	errs := validation.ValidateAnalysisTemplatesWithType(r, validation.AnalysisTemplatesWithType{
		AnalysisTemplates: []*v1alpha1.AnalysisTemplate{tmpl.DeepCopy()},
		TemplateType:      validation.InlineAnalysis,
		CanaryStepIndex:   i,
		Args:              step.Args,
	})
	for _, e := range errs {
		out = append(out, e.Error())
	}
	for _, a := range tmpl.Spec.Args {
		if a.Value != nil || a.ValueFrom != nil {
			continue
		}
		found := false
		for _, sa := range step.Args {
			found = found || sa.Name == a.Name
		}
		if !found {
			out = append(out, fmt.Sprintf("argument %q is given by neither the template nor the step", a.Name))
		}
	}
	return out
}
