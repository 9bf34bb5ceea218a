package deployments

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// This file checks the deployments with the libraries made for them: the
// kustomization is built by kustomize's own library (as kubectl apply -k
// does) and every object is decoded strictly into its k8s.io/api type, and
// compose.yaml is loaded and validated by compose-go (as docker compose
// does). The hand-written checks beside it compare what they find with the
// binaries' -h.

// strictDecoder decodes YAML into the typed objects of the kinds the
// manifests use; an unknown or duplicate field is an error, and so is a
// kind not registered here.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
}

// built is the kustomization built with kustomize, each object decoded.
type builtObject struct {
	id  string // kind/name
	obj runtime.Object
}

func buildKustomization(t *testing.T, dir string) []builtObject {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", kustomizeDir, err)
	}
	dec := strictDecoder(t)
	var out []builtObject
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := r.GetKind() + "/" + r.GetName()
		obj, _, err := dec.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		out = append(out, builtObject{id, obj})
	}
	return out
}

// TestKubernetesTyped builds the kustomization (after generating its
// secrets, as an operator does), decodes every object strictly, and checks
// what only the built output shows: every Secret, ConfigMap and key a pod
// refers to exists under its generated name, every object is in the
// namespace, and every environment variable a Parity container sets is one
// its binary reads.
func TestKubernetesTyped(t *testing.T) {
	bins := binaries(t)
	objs := buildKustomization(t, withSecrets(t))
	if len(objs) < 10 {
		t.Fatalf("the build has %d objects; want the whole installation", len(objs))
	}
	secrets, configs := map[string]map[string]bool{}, map[string]map[string]bool{}
	var pods []struct {
		id   string
		spec corev1.PodSpec
	}
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *corev1.Secret:
			secrets[x.Name] = keysOf(x.Data, x.StringData)
			for k, v := range x.Data {
				if len(v) == 0 && k != "PARITY_OPERATOR_TOKENS" {
					t.Errorf("%s: %s is empty: the generated secrets must fill it", o.id, k)
				}
			}
		case *corev1.ConfigMap:
			configs[x.Name] = keysOf(nil, x.Data)
		case *appsv1.Deployment:
			pods = append(pods, struct {
				id   string
				spec corev1.PodSpec
			}{o.id, x.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			pods = append(pods, struct {
				id   string
				spec corev1.PodSpec
			}{o.id, x.Spec.Template.Spec})
		}
		if m, ok := o.obj.(interface{ GetNamespace() string }); ok {
			if _, isNS := o.obj.(*corev1.Namespace); !isNS && m.GetNamespace() != "parity" {
				t.Errorf("%s: namespace %q, want parity", o.id, m.GetNamespace())
			}
		}
	}
	t.Logf("%d objects; Secrets %v; ConfigMaps %v", len(objs), sortedKeys(secrets), sortedKeys(configs))
	if len(pods) != 4 {
		t.Errorf("%d workloads, want 4 (nats, postgres, collector, verifier)", len(pods))
	}
	ref := func(id, what string, store map[string]map[string]bool, name, key string, optional bool) {
		keys, ok := store[name]
		switch {
		case !ok && !optional:
			t.Errorf("%s: %s %s does not exist in the build", id, what, name)
		case ok && key != "" && !keys[key] && !optional:
			t.Errorf("%s: %s %s has no key %s", id, what, name, key)
		}
	}
	for _, p := range pods {
		for _, v := range p.spec.Volumes {
			if v.Secret != nil {
				ref(p.id, "Secret", secrets, v.Secret.SecretName, "", v.Secret.Optional != nil && *v.Secret.Optional)
			}
			if v.ConfigMap != nil {
				ref(p.id, "ConfigMap", configs, v.ConfigMap.Name, "", v.ConfigMap.Optional != nil && *v.ConfigMap.Optional)
			}
		}
		for _, c := range append(p.spec.InitContainers, p.spec.Containers...) {
			id := p.id + " container " + c.Name
			names := map[string]bool{}
			for _, e := range c.Env {
				names[e.Name] = true
				if f := e.ValueFrom; f != nil && f.SecretKeyRef != nil {
					ref(id, "Secret", secrets, f.SecretKeyRef.Name, f.SecretKeyRef.Key, f.SecretKeyRef.Optional != nil && *f.SecretKeyRef.Optional)
				}
				if f := e.ValueFrom; f != nil && f.ConfigMapKeyRef != nil {
					ref(id, "ConfigMap", configs, f.ConfigMapKeyRef.Name, f.ConfigMapKeyRef.Key, f.ConfigMapKeyRef.Optional != nil && *f.ConfigMapKeyRef.Optional)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					ref(id, "Secret", secrets, e.SecretRef.Name, "", false)
					for k := range secrets[e.SecretRef.Name] {
						names[e.Prefix+k] = true
					}
				}
				if e.ConfigMapRef != nil {
					ref(id, "ConfigMap", configs, e.ConfigMapRef.Name, "", false)
					for k := range configs[e.ConfigMapRef.Name] {
						names[e.Prefix+k] = true
					}
				}
			}
			bin := parityBinary(c.Image)
			if bin == "" {
				continue
			}
			b, ok := bins[bin]
			if !ok {
				t.Errorf("%s: image %s is no Parity command", id, c.Image)
				continue
			}
			for _, n := range sortedKeys(names) {
				if b.envs[n] == nil && !goRuntimeEnv[n] {
					t.Errorf("%s: sets %s, which %s -h does not list", id, n, bin)
				}
			}
		}
	}
}

// TestStrictDecodingRefusesMistakes: the typed decoding catches what YAML
// parsing alone lets through — a misspelt field, a duplicate field, a
// value of the wrong type, an unknown kind.
func TestStrictDecodingRefusesMistakes(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(kustomizeDir, "collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	deployment := func(doc string) string {
		for _, d := range strings.Split(doc, "\n---") {
			if strings.Contains(d, "kind: Deployment") {
				return d
			}
		}
		t.Fatal("collector.yaml has no Deployment")
		return ""
	}(string(good))
	dec := strictDecoder(t)
	if _, _, err := dec.Decode([]byte(deployment), nil, nil); err != nil {
		t.Fatalf("the shipped Deployment: %v", err)
	}
	for name, doc := range map[string]string{
		"misspelt field":   strings.Replace(deployment, "replicas:", "replica:", 1),
		"duplicate field":  strings.Replace(deployment, "replicas:", "replicas: 1\n  replicas:", 1),
		"wrong value type": strings.Replace(deployment, "replicas:", "replicas: two\n  x-replicas:", 1),
		"unknown kind":     strings.Replace(deployment, "kind: Deployment", "kind: Deploymnet", 1),
	} {
		if _, _, err := dec.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// composeSpec is what compose-go loaded.
type composeSpec struct{ services types.Services }

// composeEnv is what an operator sets before docker compose up.
var composeEnv = []string{"POSTGRES_PASSWORD=9f8e7d6c5b4a39281706f5e4", "PARITY_INGEST_TOKENS=5c0d0a8f1e9b47c2a6d3f8e1b0c7a492"}

func loadComposeSpec(t *testing.T, env []string) (*composeSpec, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithWorkingDirectory("."), cli.WithName("parity"), cli.WithEnv(env))
	if err != nil {
		return nil, err
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	return &composeSpec{p.Services}, nil
}

// TestComposeTyped loads compose.yaml with compose-go, which validates it
// against the Compose specification, and checks that every variable the
// Parity services set is one their binary reads, and that the secrets have
// no defaults: without them compose refuses to start, naming them.
func TestComposeTyped(t *testing.T) {
	bins := binaries(t)
	p, err := loadComposeSpec(t, composeEnv)
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	for name, want := range map[string]string{"collector": "collector", "verifier": "verifier"} {
		s, ok := p.services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if s.Build == nil || s.Build.Target != want {
			t.Errorf("service %s: build target %v, want %s", name, s.Build, want)
		}
		for _, n := range sortedKeys(s.Environment) {
			if bins[want].envs[n] == nil && !goRuntimeEnv[n] {
				t.Errorf("service %s sets %s, which %s -h does not list", name, n, want)
			}
		}
	}
	if v := p.services["collector"].Environment["PARITY_INGEST_TOKENS"]; v == nil || *v != strings.TrimPrefix(composeEnv[1], "PARITY_INGEST_TOKENS=") {
		t.Errorf("PARITY_INGEST_TOKENS = %v, want the operator's", v)
	}
	for _, missing := range []string{"POSTGRES_PASSWORD", "PARITY_INGEST_TOKENS"} {
		var env []string
		for _, e := range composeEnv {
			if !strings.HasPrefix(e, missing+"=") {
				env = append(env, e)
			}
		}
		if _, err := loadComposeSpec(t, env); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "openssl rand") {
			t.Errorf("without %s: %v, want an error naming it and how to make one", missing, err)
		}
	}
}

func keysOf[V any](a map[string][]byte, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// parityBinary returns the Parity command an image runs ("" for others):
// parity-collector → collector.
func parityBinary(image string) string {
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	name, _, _ = strings.Cut(name, ":")
	if c, ok := strings.CutPrefix(name, "parity-"); ok {
		return c
	}
	return ""
}
