package flagger

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	"sigs.k8s.io/yaml"
)

// docsPath is the document whose examples these tests run.
const docsPath = "../../../docs/promotion.md"

// docsHost is the collector's address in the documented examples; tests
// point it at a collector they start.
const docsHost = "http://parity-collector.parity.svc:8080"

// otherTools are the kinds of docs/promotion.md another test module decodes
// with its tool's types (e2e/promotion/argo).
var otherTools = []string{"argoproj.io/v1alpha1 AnalysisTemplate", "argoproj.io/v1alpha1 Rollout"}

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

// decodeCanary decodes the documented Canary strictly (unknown and
// duplicate fields are errors, as with kubectl apply --validate=strict).
func decodeCanary(t *testing.T, md []byte) (*flaggerv1.Canary, error) {
	t.Helper()
	var c *flaggerv1.Canary
	for i, b := range yamlBlocks(t, md) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("block %d: %w", i, err)
		}
		switch kind := head.APIVersion + " " + head.Kind; {
		case kind == "flagger.app/v1beta1 Canary":
			c = &flaggerv1.Canary{}
			if err := yaml.UnmarshalStrict(b, c); err != nil {
				return nil, fmt.Errorf("block %d (Canary): %w", i, err)
			}
		case !slices.Contains(otherTools, kind):
			return nil, fmt.Errorf("block %d: %q is no object this test knows: every yaml block must be a whole object", i, kind)
		}
	}
	if c == nil {
		return nil, fmt.Errorf("no Canary")
	}
	return c, nil
}

func readCanary(t *testing.T) *flaggerv1.Canary {
	t.Helper()
	md, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCanary(t, md)
	if err != nil {
		t.Fatalf("%s: %v", docsPath, err)
	}
	return c
}

// TestCanaryDecodesStrictly: the documented Canary decodes with Flagger's
// type and no unknown field, has both webhooks, and a misspelt field is
// refused (so the strictness is real).
func TestCanaryDecodesStrictly(t *testing.T) {
	md, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCanary(t, md)
	if err != nil {
		t.Fatalf("%s: %v", docsPath, err)
	}
	types := map[flaggerv1.HookType]int{}
	for _, w := range c.GetAnalysis().Webhooks {
		types[w.Type]++
	}
	if types[flaggerv1.ConfirmPromotionHook] != 1 || types[flaggerv1.RollbackHook] != 1 {
		t.Errorf("webhooks %v, want one confirm-promotion and one rollback", types)
	}
	for _, typo := range []struct{ from, to string }{
		{"type: rollback", "kind: rollback"},
		{"stepWeight:", "stepWeigth:"},
	} {
		bad := bytes.Replace(md, []byte(typo.from), []byte(typo.to), 1)
		if bytes.Equal(bad, md) {
			t.Fatalf("the docs no longer contain %q", typo.from)
		}
		if _, err := decodeCanary(t, bad); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%q misspelt as %q: %v, want an unknown field error", typo.from, typo.to, err)
		}
	}
}
