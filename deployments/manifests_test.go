package deployments

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The files under test, relative to deployments/.
const (
	dockerfileFile = "Dockerfile"
	composeFile    = "compose.yaml"
	kustomizeDir   = "kubernetes"
)

// unknownValue stands for a value this check cannot see (a variable passed
// through from the host, a field reference).
const unknownValue = "\x00unknown"

// container is one Parity process as a deployment file runs it.
type container struct {
	where string             // file and object, for messages
	bin   *binary            // what runs
	image map[string]string  // ENV baked into the image
	env   map[string]*string // variables the file sets; nil: value unknown
	args  []string           // arguments after the executable
	ports []portRef          // ports the file expects the process to listen on

	eff map[string]string // effective flag values, after check
}

type portRef struct {
	what string
	port int
}

// imageTarget returns the Dockerfile target an image name stands for: an
// image named parity-<target> (any registry and tag) is built from target.
func imageTarget(image string) string {
	image, _, _ = strings.Cut(image, "@")
	name := path.Base(image)
	name, _, _ = strings.Cut(name, ":")
	target, ok := strings.CutPrefix(name, "parity-")
	if !ok {
		return ""
	}
	return target
}

func isNATSImage(image string) bool {
	name, _, _ := strings.Cut(path.Base(image), ":")
	return name == "nats"
}

// --- YAML helpers -----------------------------------------------------------

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asList(v any) []any         { l, _ := v.([]any); return l }

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		v = asMap(v)[k]
	}
	return v
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}

func strList(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, str(x))
	}
	return out
}

// readYAML decodes every document in file.
func readYAML(file string) ([]any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var docs []any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return docs, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// --- Docker Compose ----------------------------------------------------------

type composeProject struct {
	containers []*container
	natsNodes  int
	hosts      map[string]bool // service names and aliases
	problems   []string
}

// loadCompose reads a compose file with its variables unset (defaults
// used), as a fresh checkout would run it.
func loadCompose(file string, bins map[string]*binary) (*composeProject, error) {
	docs, err := readYAML(file)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: want one YAML document, have %d", file, len(docs))
	}
	doc := interpolateAll(docs[0])
	p := &composeProject{hosts: map[string]bool{}}
	services := asMap(dig(doc, "services"))
	if len(services) == 0 {
		return nil, fmt.Errorf("%s: no services", file)
	}
	dockerfiles := map[string]*dockerfile{}
	for _, name := range sortedKeys(services) {
		svc := asMap(services[name])
		where := fmt.Sprintf("%s: service %s", file, name)
		p.hosts[name] = true
		if h := str(svc["hostname"]); h != "" {
			p.hosts[h] = true
		}
		for _, n := range asMap(svc["networks"]) {
			for _, a := range strList(dig(n, "aliases")) {
				p.hosts[a] = true
			}
		}
		replicas := 1
		if n, ok := toInt(dig(svc, "deploy", "replicas")); ok {
			replicas = n
		}
		if isNATSImage(str(svc["image"])) {
			p.natsNodes += replicas
		}

		var df *dockerfile
		var target string
		switch b := svc["build"].(type) {
		case nil:
			if target = imageTarget(str(svc["image"])); target == "" {
				continue // not a Parity service
			}
			if df, err = parseDockerfile(dockerfileFile); err != nil {
				return nil, err
			}
		default:
			ctx, dfile := str(b), "Dockerfile"
			if m := asMap(b); m != nil {
				ctx, target = str(m["context"]), str(m["target"])
				if d := str(m["dockerfile"]); d != "" {
					dfile = d
				}
			}
			dpath := filepath.Join(filepath.Dir(file), ctx, dfile)
			if abs, err := filepath.Abs(dpath); err == nil {
				if wd, err := os.Getwd(); err == nil {
					dpath, _ = filepath.Rel(wd, abs) // ../deployments/Dockerfile is Dockerfile
				}
			}
			if df = dockerfiles[dpath]; df == nil {
				if df, err = parseDockerfile(dpath); err != nil {
					p.problems = append(p.problems, fmt.Sprintf("%s: build: %v", where, err))
					continue
				}
				dockerfiles[dpath] = df
			}
			if target == "" {
				target = df.stages[len(df.stages)-1].name
			}
		}
		st := df.byName[target]
		if st == nil {
			p.problems = append(p.problems, fmt.Sprintf("%s: target %q: no such stage in %s", where, target, df.file))
			continue
		}
		binName, err := df.entryBinary(st)
		if err == nil && bins[binName] == nil {
			err = fmt.Errorf("target %s runs %s, which this check does not build; add it to commands", target, binName)
		}
		if err != nil {
			p.problems = append(p.problems, fmt.Sprintf("%s: %s: %v", where, df.file, err))
			continue
		}
		c := &container{where: where, bin: bins[binName], image: st.env, env: map[string]*string{}}

		args := append([]string{}, st.entrypoint[1:]...)
		if ep, ok := svc["entrypoint"]; ok {
			e := commandList(ep)
			if len(e) == 0 || e[0] != st.entrypoint[0] {
				p.problems = append(p.problems, fmt.Sprintf("%s: entrypoint %q: the image runs %s", where, e, st.entrypoint[0]))
				continue
			}
			args = e[1:]
		}
		if cmd, ok := svc["command"]; ok {
			args = append(args, commandList(cmd)...)
		} else {
			args = append(args, st.cmd...)
		}
		c.args = args

		switch env := svc["environment"].(type) {
		case map[string]any:
			for k, v := range env {
				if v == nil {
					c.env[k] = nil // passed through from the host
				} else {
					s := str(v)
					c.env[k] = &s
				}
			}
		case []any:
			for _, kv := range env {
				k, v, ok := strings.Cut(str(kv), "=")
				if ok {
					c.env[k] = &v
				} else {
					c.env[k] = nil
				}
			}
		}
		if _, ok := svc["env_file"]; ok {
			p.problems = append(p.problems, fmt.Sprintf("%s: env_file: this check cannot see its variables; use environment", where))
		}
		for _, spec := range asList(svc["ports"]) {
			if port, ok := composePortTarget(spec); ok {
				c.ports = append(c.ports, portRef{what: fmt.Sprintf("ports %q", str(spec)), port: port})
			} else {
				p.problems = append(p.problems, fmt.Sprintf("%s: ports %v: cannot read the container port", where, spec))
			}
		}
		for _, e := range asList(svc["expose"]) {
			port, ok := toInt(strings.TrimSuffix(str(e), "/tcp"))
			if !ok {
				p.problems = append(p.problems, fmt.Sprintf("%s: expose %v: not a port", where, e))
				continue
			}
			c.ports = append(c.ports, portRef{what: fmt.Sprintf("expose %v", e), port: port})
		}
		if c.bin.name == "verifier" && svc["container_name"] != nil {
			p.problems = append(p.problems, fmt.Sprintf("%s: container_name: the verifier service must scale (--scale %s=N); remove it", where, name))
		}
		if c.bin.name == "verifier" {
			for _, spec := range asList(svc["ports"]) {
				if s := str(spec); strings.Count(s, ":") > 0 || asMap(spec)["published"] != nil {
					p.problems = append(p.problems, fmt.Sprintf("%s: ports %v: a fixed host port stops --scale %s=N; use expose", where, spec, name))
				}
			}
		}
		p.containers = append(p.containers, c)
	}
	return p, nil
}

// commandList reads a compose command or entrypoint: a list, or a string
// split on spaces.
func commandList(v any) []string {
	if s, ok := v.(string); ok {
		return strings.Fields(s)
	}
	return strList(v)
}

// composePortTarget reads the container port of "8080", "8080:8080",
// "127.0.0.1:8080:8080/tcp" or {target: 8080}.
func composePortTarget(spec any) (int, bool) {
	if m := asMap(spec); m != nil {
		return toInt(m["target"])
	}
	s := str(spec)
	s, _, _ = strings.Cut(s, "/")
	if i := strings.LastIndex(s, ":"); i >= 0 {
		s = s[i+1:]
	}
	return toInt(s)
}

// interpolateAll applies compose's ${VAR} interpolation to every string,
// with every variable unset.
func interpolateAll(v any) any {
	switch v := v.(type) {
	case string:
		return interpolate(v)
	case map[string]any:
		for k, x := range v {
			v[k] = interpolateAll(x)
		}
	case []any:
		for i, x := range v {
			v[i] = interpolateAll(x)
		}
	}
	return v
}

// interpolate expands $$, $VAR and ${VAR...} as compose does when VAR is
// unset: ${VAR:-default} and ${VAR-default} give the default, ${VAR:+x} and
// plain references give "", ${VAR:?err} gives unknownValue.
func interpolate(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			depth, j := 1, i+2
			for ; j < len(s) && depth > 0; j++ {
				switch s[j] {
				case '{':
					depth++
				case '}':
					depth--
				}
			}
			expr := s[i+2 : j-1]
			i = j - 1
			op := ""
			if k := strings.IndexAny(expr, ":-?+"); k >= 0 {
				op = expr[k:]
			}
			switch {
			case strings.HasPrefix(op, ":-"):
				b.WriteString(interpolate(op[2:]))
			case strings.HasPrefix(op, "-"):
				b.WriteString(interpolate(op[1:]))
			case strings.HasPrefix(op, ":?"), strings.HasPrefix(op, "?"):
				b.WriteString(unknownValue)
			}
		case next == '_' || next >= 'A' && next <= 'Z' || next >= 'a' && next <= 'z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			i = j - 1
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// --- Kubernetes ----------------------------------------------------------------

type k8sObject struct {
	file string // relative to deployments/
	doc  map[string]any
}

func (o k8sObject) kind() string { return str(o.doc["kind"]) }
func (o k8sObject) name() string { return str(dig(o.doc, "metadata", "name")) }
func (o k8sObject) String() string {
	return fmt.Sprintf("%s: %s %s", o.file, o.kind(), o.name())
}

type kustomization struct {
	objects   []k8sObject
	namespace string
	problems  []string
}

// withSecrets copies the kustomization to a temporary directory and runs
// secrets/generate.sh there, as an operator does before the first apply; it
// returns the copy. The secrets' env files are never in the repository.
func withSecrets(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), kustomizeDir)
	if err := os.CopyFS(dir, os.DirFS(kustomizeDir)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", filepath.Join(dir, "secrets", "generate.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("secrets/generate.sh: %v\n%s", err, out)
	}
	return dir
}

// loadKustomization reads dir/kustomization.yaml, its resources (files, or
// directories with their own kustomization) and its ConfigMap and Secret
// generators.
func loadKustomization(dir string) (*kustomization, error) {
	file := filepath.Join(dir, "kustomization.yaml")
	docs, err := readYAML(file)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: want one YAML document", file)
	}
	kz := asMap(docs[0])
	k := &kustomization{namespace: str(kz["namespace"])}
	listed := map[string]bool{}
	for _, r := range strList(kz["resources"]) {
		p := filepath.Join(dir, r)
		listed[filepath.Clean(p)] = true
		info, err := os.Stat(p)
		switch {
		case strings.Contains(r, "://"):
			k.problems = append(k.problems, fmt.Sprintf("%s: resource %s: remote resources are not checked", file, r))
		case err != nil:
			k.problems = append(k.problems, fmt.Sprintf("%s: resource %s does not exist", file, r))
		case info.IsDir():
			sub, err := loadKustomization(p)
			if err != nil {
				return nil, err
			}
			k.objects = append(k.objects, sub.objects...)
			k.problems = append(k.problems, sub.problems...)
		default:
			docs, err := readYAML(p)
			if err != nil {
				return nil, err
			}
			for _, d := range docs {
				k.objects = append(k.objects, k8sObject{file: p, doc: asMap(d)})
			}
		}
	}
	// A manifest left out of resources is never applied.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if ext := filepath.Ext(p); e.IsDir() || (ext != ".yaml" && ext != ".yml") || e.Name() == "kustomization.yaml" {
			continue
		}
		if !listed[filepath.Clean(p)] {
			k.problems = append(k.problems, fmt.Sprintf("%s: %s is not listed in resources, so it is never applied", file, e.Name()))
		}
	}
	for _, key := range []string{"patches", "patchesStrategicMerge", "patchesJson6902", "replacements", "components"} {
		if _, ok := kz[key]; ok {
			k.problems = append(k.problems, fmt.Sprintf("%s: %s: this check does not apply them; extend loadKustomization", file, key))
		}
	}
	for kind, key := range map[string]string{"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"} {
		for _, g := range asList(kz[key]) {
			data := map[string]any{}
			for _, lit := range strList(dig(g, "literals")) {
				name, val, _ := strings.Cut(lit, "=")
				data[name] = val
			}
			for _, envFile := range strList(dig(g, "envs")) {
				b, err := os.ReadFile(filepath.Join(dir, envFile))
				if err != nil {
					return nil, fmt.Errorf("%s: %s %s: %w", file, key, str(dig(g, "name")), err)
				}
				for line := range strings.SplitSeq(string(b), "\n") {
					if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
						name, val, _ := strings.Cut(line, "=")
						data[name] = val
					}
				}
			}
			for _, f := range strList(dig(g, "files")) {
				name, src, ok := strings.Cut(f, "=")
				if !ok {
					name, src = filepath.Base(f), f
				}
				b, err := os.ReadFile(filepath.Join(dir, src))
				if err != nil {
					return nil, fmt.Errorf("%s: %s %s: %w", file, key, str(dig(g, "name")), err)
				}
				data[name] = string(b)
			}
			dataKey := "data"
			if kind == "Secret" {
				dataKey = "stringData"
			}
			k.objects = append(k.objects, k8sObject{file: file + " " + key, doc: map[string]any{
				"apiVersion": "v1", "kind": kind, "metadata": map[string]any{"name": dig(g, "name")}, dataKey: data,
			}})
		}
	}
	return k, nil
}

func (k *kustomization) find(kind, name string) (k8sObject, bool) {
	for _, o := range k.objects {
		if o.kind() == kind && o.name() == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

// data returns a ConfigMap's or Secret's keys and values.
func (o k8sObject) data() (map[string]string, error) {
	out := map[string]string{}
	for k, v := range asMap(o.doc["data"]) {
		if o.kind() == "Secret" {
			b, err := base64.StdEncoding.DecodeString(str(v))
			if err != nil {
				return nil, fmt.Errorf("%s: data %s: %v", o, k, err)
			}
			out[k] = string(b)
		} else {
			out[k] = str(v)
		}
	}
	for k, v := range asMap(o.doc["stringData"]) {
		out[k] = str(v)
	}
	return out, nil
}

// pod is one pod template in the manifests.
type pod struct {
	obj      k8sObject
	spec     map[string]any
	labels   map[string]any
	replicas int
}

func (k *kustomization) pods() []pod {
	var out []pod
	for _, o := range k.objects {
		var tmpl any
		switch o.kind() {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
			tmpl = dig(o.doc, "spec", "template")
		case "CronJob":
			tmpl = dig(o.doc, "spec", "jobTemplate", "spec", "template")
		case "Pod":
			tmpl = o.doc
		default:
			continue
		}
		replicas := 1
		if n, ok := toInt(dig(o.doc, "spec", "replicas")); ok {
			replicas = n
		}
		out = append(out, pod{obj: o, spec: asMap(dig(tmpl, "spec")), labels: asMap(dig(tmpl, "metadata", "labels")), replicas: replicas})
	}
	return out
}

func (p pod) containers() []map[string]any {
	var out []map[string]any
	for _, key := range []string{"initContainers", "containers"} {
		for _, c := range asList(p.spec[key]) {
			out = append(out, asMap(c))
		}
	}
	return out
}

// knownHost reports whether host names a Service, or a StatefulSet pod
// behind its headless Service, in the manifests. Other names (another
// namespace's, or outside the cluster) are not ours to judge.
func (k *kustomization) knownHost(host string) bool {
	h := strings.TrimSuffix(strings.TrimSuffix(host, ".cluster.local"), ".svc")
	if k.namespace != "" {
		h = strings.TrimSuffix(h, "."+k.namespace)
	}
	podName, svc, dotted := strings.Cut(h, ".")
	if !dotted {
		_, ok := k.find("Service", h)
		return ok
	}
	if _, ok := k.find("Service", svc); !ok {
		return true
	}
	for _, o := range k.objects {
		if o.kind() != "StatefulSet" || str(dig(o.doc, "spec", "serviceName")) != svc {
			continue
		}
		n, ok := toInt(dig(o.doc, "spec", "replicas"))
		if !ok {
			n = 1
		}
		for i := range n {
			if podName == fmt.Sprintf("%s-%d", o.name(), i) {
				return true
			}
		}
	}
	return false
}

// loadKubernetes returns the Parity containers in the manifests.
func loadKubernetes(k *kustomization, df *dockerfile, bins map[string]*binary) (cs []*container, natsNodes int, problems []string) {
	for _, p := range k.pods() {
		for _, spec := range p.containers() {
			image := str(spec["image"])
			if isNATSImage(image) {
				natsNodes += p.replicas
			}
			target := imageTarget(image)
			if target == "" {
				continue
			}
			where := fmt.Sprintf("%s, container %s", p.obj, str(spec["name"]))
			st := df.byName[target]
			if st == nil {
				problems = append(problems, fmt.Sprintf("%s: image %s: %s has no target %q", where, image, df.file, target))
				continue
			}
			binName, err := df.entryBinary(st)
			if err == nil && bins[binName] == nil {
				err = fmt.Errorf("target %s runs %s, which this check does not build; add it to commands", target, binName)
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s: %v", where, df.file, err))
				continue
			}
			c := &container{where: where, bin: bins[binName], image: st.env, env: map[string]*string{}}

			// command replaces ENTRYPOINT and CMD; args replaces CMD.
			args := append([]string{}, st.entrypoint[1:]...)
			if cmd, ok := spec["command"]; ok {
				e := strList(cmd)
				if len(e) == 0 || e[0] != st.entrypoint[0] {
					problems = append(problems, fmt.Sprintf("%s: command %q: the image runs %s", where, e, st.entrypoint[0]))
					continue
				}
				args = e[1:]
			}
			if a, ok := spec["args"]; ok {
				args = append(args, strList(a)...)
			} else if _, ok := spec["command"]; !ok {
				args = append(args, st.cmd...)
			}
			c.args = args

			for _, ef := range asList(spec["envFrom"]) {
				for kind, key := range map[string]string{"ConfigMap": "configMapRef", "Secret": "secretRef"} {
					ref := asMap(dig(ef, key))
					if ref == nil {
						continue
					}
					o, ok := k.find(kind, str(ref["name"]))
					if !ok {
						if ref["optional"] != true {
							problems = append(problems, fmt.Sprintf("%s: envFrom %s %q: no such %s in the kustomization", where, key, str(ref["name"]), kind))
						}
						continue
					}
					data, err := o.data()
					if err != nil {
						problems = append(problems, err.Error())
						continue
					}
					for name, v := range data {
						c.env[str(dig(ef, "prefix"))+name] = &v
					}
				}
			}
			for _, e := range asList(spec["env"]) {
				name := str(dig(e, "name"))
				if v, ok := asMap(e)["value"]; ok {
					s := str(v)
					c.env[name] = &s
					continue
				}
				c.env[name] = nil
				for kind, key := range map[string]string{"ConfigMap": "configMapKeyRef", "Secret": "secretKeyRef"} {
					ref := asMap(dig(e, "valueFrom", key))
					if ref == nil {
						continue
					}
					o, ok := k.find(kind, str(ref["name"]))
					data, err := o.data() // empty when !ok
					if err != nil {
						problems = append(problems, err.Error())
						continue
					}
					v, hasKey := data[str(ref["key"])]
					switch {
					case hasKey:
						c.env[name] = &v
					case ref["optional"] == true:
					case !ok:
						problems = append(problems, fmt.Sprintf("%s: env %s: %s %q: no such %s in the kustomization", where, name, key, str(ref["name"]), kind))
					default:
						problems = append(problems, fmt.Sprintf("%s: env %s: %s %s has no key %q", where, name, kind, str(ref["name"]), str(ref["key"])))
					}
				}
			}

			named := map[string]int{}
			for _, port := range asList(spec["ports"]) {
				n, _ := toInt(dig(port, "containerPort"))
				if name := str(dig(port, "name")); name != "" {
					named[name] = n
				}
				c.ports = append(c.ports, portRef{what: fmt.Sprintf("containerPort %d", n), port: n})
			}
			resolve := func(what string, v any) {
				if n, ok := toInt(v); ok {
					c.ports = append(c.ports, portRef{what: what, port: n})
				} else if n, ok := named[str(v)]; ok {
					c.ports = append(c.ports, portRef{what: what, port: n})
				} else {
					problems = append(problems, fmt.Sprintf("%s: %s %q: no container port has that name", where, what, str(v)))
				}
			}
			for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
				for _, handler := range []string{"httpGet", "tcpSocket", "grpc"} {
					if v := dig(spec, probe, handler, "port"); v != nil {
						resolve(probe+" "+handler+" port", v)
					}
				}
			}
			for _, o := range k.objects {
				sel := asMap(dig(o.doc, "spec", "selector"))
				if o.kind() != "Service" || len(sel) == 0 || !matches(sel, p.labels) {
					continue
				}
				for _, sp := range asList(dig(o.doc, "spec", "ports")) {
					tp := dig(sp, "targetPort")
					if tp == nil {
						tp = dig(sp, "port")
					}
					resolve(fmt.Sprintf("%s targetPort", o), tp)
				}
			}
			cs = append(cs, c)
		}
	}
	return cs, natsNodes, problems
}

func matches(selector, labels map[string]any) bool {
	for k, v := range selector {
		if str(labels[k]) != str(v) {
			return false
		}
	}
	return true
}
