package deployments

import (
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The deployment files are checked against the binaries themselves: the
// flags and variables a container sets must be ones `<binary> -h` lists.

func TestYAMLFilesParse(t *testing.T) {
	var problems []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		docs, err := readYAML(p)
		if err != nil {
			problems = append(problems, err.Error())
			return nil
		}
		if len(docs) == 0 {
			problems = append(problems, p+": empty")
		}
		if filepath.Dir(p) != kustomizeDir || filepath.Base(p) == "kustomization.yaml" {
			return nil
		}
		for i, d := range docs {
			if str(dig(d, "apiVersion")) == "" || str(dig(d, "kind")) == "" || str(dig(d, "metadata", "name")) == "" {
				problems = append(problems, fmt.Sprintf("%s: document %d: needs apiVersion, kind and metadata.name", p, i+1))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	report(t, problems)
}

func TestKustomization(t *testing.T) {
	k, err := loadKustomization(withSecrets(t))
	if err != nil {
		t.Fatal(err)
	}
	problems := k.problems
	// An images: entry that matches no container rewrites nothing.
	docs, err := readYAML(filepath.Join(kustomizeDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range asList(dig(docs[0], "images")) {
		name, used := str(dig(img, "name")), false
		for _, p := range k.pods() {
			for _, c := range p.containers() {
				image := str(c["image"])
				used = used || image == name || strings.HasPrefix(image, name+":") || strings.HasPrefix(image, name+"@")
			}
		}
		if !used {
			problems = append(problems, fmt.Sprintf("%s/kustomization.yaml: images: %s: no container uses that image", kustomizeDir, name))
		}
	}
	if k.namespace != "" {
		if _, ok := k.find("Namespace", k.namespace); !ok {
			problems = append(problems, fmt.Sprintf("%s/kustomization.yaml: namespace %s: no Namespace resource creates it", kustomizeDir, k.namespace))
		}
	}
	report(t, problems)
}

func TestDockerfile(t *testing.T) {
	bins := binaries(t)
	df, err := parseDockerfile(dockerfileFile)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	add := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: ", df.file, line)+fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	for _, st := range df.stages {
		for _, c := range st.copies {
			if c.from != "" {
				if !seen[c.from] {
					add(c.line, "COPY --from=%s: no earlier stage has that name", c.from)
				}
				continue
			}
			for _, src := range c.srcs {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					add(c.line, "COPY %s: not in the build context (the repository root)", src)
				} else if ign, err := df.ignored(src); err != nil || ign {
					add(c.line, "COPY %s: excluded by the dockerignore%v", src, errSuffix(err))
				}
			}
		}
		seen[st.name] = true
		if len(st.builds) == 0 {
			continue
		}
		if img, tag, _ := strings.Cut(st.base, ":"); path.Base(img) == "golang" {
			if want := goModVersion(t); !versionAtLeast(tag, want) {
				add(st.line, "FROM %s: go.mod needs Go %s", st.base, want)
			}
		}
		var pkgs []string
		for _, g := range st.builds {
			for _, p := range g.pkgs {
				ctx, ok := st.contextPath(p)
				if !ok {
					add(g.line, "go build %s: no COPY puts that directory into stage %s", p, st.name)
					continue
				}
				if goFiles, _ := filepath.Glob(filepath.Join(repoRoot, ctx, "*.go")); len(goFiles) == 0 {
					add(g.line, "go build %s: %s holds no Go package", p, ctx)
					continue
				}
				pkgs = append(pkgs, "./"+ctx)
			}
		}
		if len(pkgs) == 0 {
			continue
		}
		// Every file the build reads must be copied in and not ignored.
		files, err := goListFiles(pkgs)
		if err != nil {
			t.Fatal(err)
		}
		var missing, ignored []string
		for _, f := range append([]string{"go.mod", "go.sum"}, files...) {
			if _, ok := st.imagePath(f); !ok {
				missing = append(missing, f)
			} else if ign, err := df.ignored(f); err != nil {
				t.Fatal(err)
			} else if ign {
				ignored = append(ignored, f)
			}
		}
		if len(missing) > 0 {
			add(st.line, "stage %s builds %s, but no COPY brings in %s", st.name, strings.Join(pkgs, " "), abbreviate(missing))
		}
		if len(ignored) > 0 {
			add(st.line, "stage %s builds %s, but the dockerignore excludes %s", st.name, strings.Join(pkgs, " "), abbreviate(ignored))
		}
	}

	for _, name := range commands {
		st := df.byName[name]
		if st == nil {
			problems = append(problems, fmt.Sprintf("%s: no target %q (docker build --target %s)", df.file, name, name))
			continue
		}
		if got, err := df.entryBinary(st); err != nil {
			add(st.line, "target %s: %v", name, err)
			continue
		} else if got != name {
			add(st.line, "target %s runs the %s binary", name, got)
			continue
		}
		uid, _, _ := strings.Cut(st.user, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			add(st.line, "target %s: USER %q: want a numeric non-root user, so that Kubernetes' runAsNonRoot can verify it", name, st.user)
		}
		c := &container{
			where: fmt.Sprintf("%s: target %s", df.file, name),
			bin:   bins[name],
			env:   map[string]*string{},
			args:  append(append([]string{}, st.entrypoint[1:]...), st.cmd...),
		}
		for k, v := range st.env {
			c.env[k] = &v
		}
		for _, p := range st.expose {
			c.ports = append(c.ports, portRef{what: fmt.Sprintf("EXPOSE %d", p), port: p})
		}
		problems = append(problems, c.check()...)
	}
	report(t, problems)
}

func TestCompose(t *testing.T) {
	bins := binaries(t)
	p, err := loadCompose(composeFile, bins)
	if err != nil {
		t.Fatal(err)
	}
	problems := p.problems
	for _, c := range p.containers {
		problems = append(problems, c.check()...)
	}
	known := func(host string) bool { return strings.Contains(host, ".") || p.hosts[host] }
	problems = append(problems, checkDeployment(composeFile, p.containers, p.natsNodes, known)...)
	report(t, problems)
}

func TestKubernetes(t *testing.T) {
	bins := binaries(t)
	k, err := loadKustomization(withSecrets(t))
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(dockerfileFile)
	if err != nil {
		t.Fatal(err)
	}
	cs, natsNodes, problems := loadKubernetes(k, df, bins)
	for _, c := range cs {
		problems = append(problems, c.check()...)
	}
	problems = append(problems, checkDeployment(kustomizeDir, cs, natsNodes, k.knownHost)...)
	report(t, problems)
}

// TestKubernetesPodSecurity checks what the namespace's Pod Security level
// "restricted" requires of every container, and resource requests and
// limits.
func TestKubernetesPodSecurity(t *testing.T) {
	k, err := loadKustomization(withSecrets(t))
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, p := range k.pods() {
		psc := asMap(p.spec["securityContext"])
		for _, c := range p.containers() {
			where := fmt.Sprintf("%s, container %s", p.obj, str(c["name"]))
			csc := asMap(c["securityContext"])
			either := func(key string) any {
				if v, ok := csc[key]; ok {
					return v
				}
				return psc[key]
			}
			if either("runAsNonRoot") != true {
				problems = append(problems, where+": securityContext.runAsNonRoot must be true")
			}
			if uid, ok := toInt(either("runAsUser")); ok && uid == 0 {
				problems = append(problems, where+": securityContext.runAsUser is 0")
			}
			if csc["allowPrivilegeEscalation"] != false {
				problems = append(problems, where+": securityContext.allowPrivilegeEscalation must be false")
			}
			if !slices.Contains(strList(dig(csc, "capabilities", "drop")), "ALL") {
				problems = append(problems, where+": securityContext.capabilities.drop must hold ALL")
			}
			if s := str(dig(either("seccompProfile"), "type")); s != "RuntimeDefault" && s != "Localhost" {
				problems = append(problems, where+": securityContext.seccompProfile.type must be RuntimeDefault or Localhost")
			}
			if imageTarget(str(c["image"])) != "" && csc["readOnlyRootFilesystem"] != true {
				problems = append(problems, where+": a Parity container writes no files: set readOnlyRootFilesystem: true")
			}
			for _, r := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
				kind, res, _ := strings.Cut(r, ".")
				if dig(c, "resources", kind, res) == nil {
					problems = append(problems, fmt.Sprintf("%s: resources.%s is not set", where, r))
				}
			}
		}
	}
	report(t, problems)
}

// check works out the container's effective settings (the binary's
// defaults, then the image's ENV, then the file's variables, then flags) and
// returns every flag or variable the binary does not accept and every
// declared port that is not the one it listens on.
func (c *container) check() []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, c.where+": "+fmt.Sprintf(format, args...))
	}
	c.eff = map[string]string{}
	for name, f := range c.bin.flags {
		c.eff[name] = f.def
	}
	for k, v := range c.image {
		if f := c.bin.envs[k]; f != nil {
			c.eff[f.name] = v
		}
	}
	fromEnv := map[string]string{} // flag name -> variable that set it
	for _, k := range sortedKeys(c.env) {
		f := c.bin.envs[k]
		if f == nil {
			if !goRuntimeEnv[k] {
				add("environment variable %s: the %s accepts no such variable%s", k, c.bin.name, suggest(k, c.bin.envNames()))
			}
			continue
		}
		fromEnv[f.name] = k
		c.eff[f.name] = unknownValue
		if v := c.env[k]; v != nil {
			c.eff[f.name] = *v
		}
	}
	for i := 0; i < len(c.args); i++ {
		a := c.args[i]
		name, isFlag := strings.CutPrefix(a, "-")
		name = strings.TrimPrefix(name, "-")
		if !isFlag || a == "--" || name == "" || strings.HasPrefix(name, "-") {
			add("argument %q: the %s takes flags only", a, c.bin.name)
			break
		}
		name, val, hasVal := strings.Cut(name, "=")
		f := c.bin.flags[name]
		if f == nil {
			add("flag %s: the %s has no such flag%s", a, c.bin.name, suggest(name, c.bin.flagNames()))
			if !hasVal && i+1 < len(c.args) && !strings.HasPrefix(c.args[i+1], "-") {
				i++ // its value, presumably
			}
			continue
		}
		if !hasVal && !f.isBool {
			if i+1 == len(c.args) {
				add("flag %s needs a value", a)
				break
			}
			i++
			val = c.args[i]
		} else if !hasVal {
			val = "true"
		}
		if v, ok := fromEnv[f.name]; ok {
			add("both flag --%s and variable %s are set; the flag wins, the variable is dead", f.name, v)
		}
		c.eff[f.name] = val
	}

	lf := c.bin.listenFlag()
	addr := c.eff[lf]
	if lf == "" || addr == "-" {
		for _, p := range c.ports {
			add("%s: the %s listens on no port", p.what, c.bin.name)
		}
		return problems
	}
	if addr == unknownValue {
		return problems
	}
	host, portStr, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		add("--%s %q: not host:port", lf, addr)
		return problems
	}
	if isLoopback(host) {
		add("the %s listens on %s, unreachable from outside its container: set %s=0.0.0.0:%d", c.bin.name, addr, c.bin.flags[lf].env, port)
	}
	if len(c.ports) == 0 {
		add("declares no port for the %s's HTTP listener (%s)", c.bin.name, addr)
	}
	for _, p := range c.ports {
		if p.port != port {
			add("%s: port %d, but the %s listens on %s", p.what, p.port, c.bin.name, addr)
		}
	}
	return problems
}

// sharedSettings must be equal in every process of one deployment: each
// creates or updates the stream and its consumer to its own settings at
// start, and all must use the same database.
var sharedSettings = []string{"stream-replicas", "stream-max-bytes", "stream-max-age", "max-ack-pending", "ack-wait", "database-url"}

// checkDeployment checks the Parity containers of one deployment together.
func checkDeployment(name string, cs []*container, natsNodes int, knownHost func(string) bool) []string {
	var problems []string
	have := map[string]bool{}
	for _, c := range cs {
		have[c.bin.name] = true
	}
	for _, cmd := range commands {
		if !have[cmd] {
			problems = append(problems, fmt.Sprintf("%s: runs no %s", name, cmd))
		}
	}
	for _, s := range sharedSettings {
		values := map[string][]string{} // normalized value -> where
		for _, c := range cs {
			f, v := c.bin.flags[s], c.eff[s]
			if f == nil || v == unknownValue || strings.Contains(v, unknownValue) {
				continue
			}
			values[normalize(f, v)] = append(values[normalize(f, v)], c.where)
		}
		if len(values) > 1 {
			var list []string
			for _, v := range sortedKeys(values) {
				list = append(list, fmt.Sprintf("%s in %s", redact(v), strings.Join(values[v], ", ")))
			}
			problems = append(problems, fmt.Sprintf("%s: --%s differs between processes: %s", name, s, strings.Join(list, "; ")))
		}
	}
	tooMany := map[int][]string{} // stream replicas above natsNodes -> where
	for _, c := range cs {
		if n, err := strconv.Atoi(c.eff["stream-replicas"]); err == nil && n > natsNodes {
			tooMany[n] = append(tooMany[n], c.where)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(tooMany)) {
		where := tooMany[n]
		problems = append(problems, fmt.Sprintf("%s: stream replicas %d (%s), but the deployment runs %d NATS servers", name, n, strings.Join(where, ", "), natsNodes))
	}
	for _, c := range cs {
		urls := map[string]string{"nats-url": c.eff["nats-url"], "database-url": c.eff["database-url"]}
		for _, flag := range sortedKeys(urls) {
			v := urls[flag]
			if strings.Contains(v, unknownValue) {
				continue
			}
			if v == "" {
				problems = append(problems, fmt.Sprintf("%s: --%s is empty (the collector would start its own NATS server, out of the verifiers' reach)", c.where, flag))
				continue
			}
			for _, u := range strings.Split(v, ",") {
				u = strings.TrimSpace(u)
				if !strings.Contains(u, "://") {
					u = "nats://" + u
				}
				parsed, err := url.Parse(u)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: --%s: %v", c.where, flag, redactErr(err)))
					continue
				}
				switch host := parsed.Hostname(); {
				case isLoopback(host):
					problems = append(problems, fmt.Sprintf("%s: --%s points at %s, the container itself", c.where, flag, host))
				case !knownHost(host):
					problems = append(problems, fmt.Sprintf("%s: --%s names host %s, which is no service here", c.where, flag, host))
				}
			}
		}
	}
	return problems
}

func normalize(f *flagSpec, v string) string {
	switch f.typ {
	case "duration":
		if d, err := time.ParseDuration(v); err == nil {
			return d.String()
		}
	case "int", "int64", "uint", "uint64":
		if n, err := strconv.ParseInt(v, 0, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
	}
	return v
}

var urlPassword = regexp.MustCompile(`(://[^:/@]*:)[^@/]*@`)

// redact hides a password in a URL.
func redact(s string) string     { return urlPassword.ReplaceAllString(s, "${1}xxx@") }
func redactErr(err error) string { return redact(err.Error()) }

// abbreviate lists up to five items and counts the rest.
func abbreviate(items []string) string {
	if len(items) <= 5 {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:5], ", "), len(items)-5)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// goListFiles returns the module's files (Go and embedded) that building
// pkgs for linux without cgo reads, relative to the repository root.
func goListFiles(pkgs []string) ([]string, error) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, err
	}
	args := append([]string{"list", "-deps", "-f", `{{.Dir}}{{range .GoFiles}}|{{.}}{{end}}{{range .EmbedFiles}}|{{.}}{{end}}`}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var files []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		rel, err := filepath.Rel(root, parts[0])
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue // the standard library or another module
		}
		for _, f := range parts[1:] {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return files, nil
}

// goModVersion returns the major.minor of go.mod's go directive.
func goModVersion(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// versionAtLeast reports whether an image tag such as 1.26, 1.26.1 or
// 1.26-bookworm is at least major.minor want.
func versionAtLeast(tag, want string) bool {
	m := regexp.MustCompile(`^(\d+)\.(\d+)`).FindStringSubmatch(tag)
	w := regexp.MustCompile(`^(\d+)\.(\d+)`).FindStringSubmatch(want)
	if m == nil || w == nil {
		return false
	}
	ma, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	wa, _ := strconv.Atoi(w[1])
	wi, _ := strconv.Atoi(w[2])
	return ma > wa || ma == wa && mi >= wi
}

func report(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

// Canned usages for the checker's own tests, so that they do not change
// when the real binaries gain flags.
const (
	testCollectorUsage = `Usage of collector:
  -addr string
    	HTTP listen address (env PARITY_ADDR) (default "127.0.0.1:8080")
  -database-url string
    	PostgreSQL URL (env DATABASE_URL) (default "postgres://postgres@127.0.0.1:5432/parity")
  -demo
    	publish demo traffic (env PARITY_DEMO)
  -ingest-token string
    	bearer tokens (env PARITY_INGEST_TOKENS)
  -nats-url string
    	NATS server URL (env NATS_URL)
  -stream-max-age duration
    	how long an unconsumed pair is kept (env PARITY_STREAM_MAX_AGE) (default 24h0m0s)
  -stream-replicas int
    	pair stream replicas (env PARITY_STREAM_REPLICAS) (default 1)
`
	testVerifierUsage = `Usage of verifier:
  -database-url string
    	PostgreSQL URL (env DATABASE_URL) (default "postgres://postgres@127.0.0.1:5432/parity")
  -http-addr string
    	serves /metrics ("-": none) (env PARITY_HTTP_ADDR) (default "127.0.0.1:9090")
  -nats-url string
    	NATS server URL(s) (env NATS_URL) (default "nats://127.0.0.1:4222")
  -stream-max-age duration
    	how long an unconsumed pair is kept (env PARITY_STREAM_MAX_AGE) (default 24h0m0s)
  -stream-replicas int
    	pair stream replicas (env PARITY_STREAM_REPLICAS) (default 1)
  -workers int
    	workers in this process (env PARITY_WORKERS) (default 1)
`
)

func testBinaries(t *testing.T) map[string]*binary {
	t.Helper()
	bins := map[string]*binary{}
	for name, usage := range map[string]string{"collector": testCollectorUsage, "verifier": testVerifierUsage} {
		b, err := parseUsage(name, usage)
		if err != nil {
			t.Fatal(err)
		}
		bins[name] = b
	}
	return bins
}

// TestCheckFindsMistakes keeps the checker honest: each case is a mistake a
// deployment file could make and the problem it must be reported as.
func TestCheckFindsMistakes(t *testing.T) {
	bins := testBinaries(t)
	v := func(s string) *string { return &s }
	http := []portRef{{what: "containerPort 8080", port: 8080}}
	metrics := []portRef{{what: "containerPort 9090", port: 9090}}
	tests := []struct {
		name string
		c    container
		want string // a part of the one problem expected; "" for none
	}{
		{"a correct collector", container{bin: bins["collector"], env: map[string]*string{"PARITY_ADDR": v("0.0.0.0:8080")}, ports: http}, ""},
		{"a correct verifier", container{bin: bins["verifier"], env: map[string]*string{"PARITY_HTTP_ADDR": v(":9090")}, ports: metrics}, ""},
		{"a verifier without a listener", container{bin: bins["verifier"], env: map[string]*string{"PARITY_HTTP_ADDR": v("-")}}, ""},
		{"a misspelt variable", container{bin: bins["verifier"], env: map[string]*string{"PARITY_HTTP_ADDR": v("-"), "PARITY_STREAM_REPLICA": v("3")}},
			`environment variable PARITY_STREAM_REPLICA: the verifier accepts no such variable (did you mean "PARITY_STREAM_REPLICAS"?)`},
		{"a variable of the other binary", container{bin: bins["verifier"], env: map[string]*string{"PARITY_HTTP_ADDR": v("-"), "PARITY_INGEST_TOKENS": v("x")}},
			"PARITY_INGEST_TOKENS: the verifier accepts no such variable"},
		{"a Go runtime variable", container{bin: bins["verifier"], env: map[string]*string{"PARITY_HTTP_ADDR": v("-"), "GOMEMLIMIT": v("400MiB")}}, ""},
		{"a misspelt flag", container{bin: bins["collector"], args: []string{"--adr", "0.0.0.0:8080"}, image: map[string]string{"PARITY_ADDR": "0.0.0.0:8080"}, ports: http},
			`flag --adr: the collector has no such flag (did you mean "addr"?)`},
		{"flags with = and a bool flag", container{bin: bins["collector"], args: []string{"--demo", "-addr=0.0.0.0:8080"}, ports: http}, ""},
		{"a positional argument", container{bin: bins["verifier"], args: []string{"--http-addr", "-", "serve"}}, `argument "serve": the verifier takes flags only`},
		{"a flag without its value", container{bin: bins["verifier"], args: []string{"--http-addr", "-", "--workers"}}, "flag --workers needs a value"},
		{"a flag and its variable", container{bin: bins["collector"], env: map[string]*string{"PARITY_ADDR": v("0.0.0.0:8080")}, args: []string{"--addr", "0.0.0.0:8080"}, ports: http},
			"both flag --addr and variable PARITY_ADDR are set"},
		{"the binary's loopback default", container{bin: bins["collector"], ports: http},
			"listens on 127.0.0.1:8080, unreachable from outside its container: set PARITY_ADDR=0.0.0.0:8080"},
		{"a port the collector does not listen on", container{bin: bins["collector"], env: map[string]*string{"PARITY_ADDR": v(":9090")}, ports: http},
			"containerPort 8080: port 8080, but the collector listens on :9090"},
		{"no port declared", container{bin: bins["collector"], env: map[string]*string{"PARITY_ADDR": v("0.0.0.0:8080")}}, "declares no port"},
		{"a port on a verifier without a listener", container{bin: bins["verifier"], env: map[string]*string{"PARITY_HTTP_ADDR": v("-")}, ports: http},
			"containerPort 8080: the verifier listens on no port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			c.where = "file"
			problems := c.check()
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.want)):
				t.Errorf("problems %q, want one containing %q", problems, tt.want)
			}
		})
	}
}

// TestCheckDeploymentFindsMistakes does the same for the checks across the
// processes of one deployment.
func TestCheckDeploymentFindsMistakes(t *testing.T) {
	bins := testBinaries(t)
	env := func(kv ...string) map[string]*string {
		m := map[string]*string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = &kv[i+1]
		}
		return m
	}
	shared := []string{"NATS_URL", "nats://nats:4222", "DATABASE_URL", "postgres://parity:secret@postgres/parity", "PARITY_STREAM_REPLICAS", "3"}
	collector := func(extra ...string) *container {
		return &container{where: "collector", bin: bins["collector"], env: env(append(append([]string{"PARITY_ADDR", ":8080"}, shared...), extra...)...),
			ports: []portRef{{what: "port", port: 8080}}}
	}
	verifier := func(extra ...string) *container {
		return &container{where: "verifier", bin: bins["verifier"], env: env(append(append([]string{"PARITY_HTTP_ADDR", "-"}, shared...), extra...)...)}
	}
	known := func(h string) bool { return h == "nats" || h == "postgres" }
	tests := []struct {
		name      string
		cs        []*container
		natsNodes int
		want      string // a part of the one problem expected; "" for none
	}{
		{"agreeing processes", []*container{collector(), verifier(), verifier()}, 3, ""},
		{"the same duration, written differently", []*container{collector("PARITY_STREAM_MAX_AGE", "24h"), verifier()}, 3, ""},
		{"stream replicas that differ", []*container{collector(), verifier("PARITY_STREAM_REPLICAS", "1")}, 3,
			"--stream-replicas differs between processes: 1 in verifier; 3 in collector"},
		{"another database, password hidden", []*container{collector(), verifier("DATABASE_URL", "postgres://parity:secret@postgres/other")}, 3,
			"postgres://parity:xxx@postgres/other in verifier"},
		{"more replicas than NATS servers", []*container{collector(), verifier()}, 1, "d: stream replicas 3 (collector, verifier), but the deployment runs 1 NATS servers"},
		{"a misspelt host", []*container{collector(), verifier("NATS_URL", "nats://nats:4222,nats://nast:4222")}, 3, "--nats-url names host nast, which is no service here"},
		{"the verifier's loopback default", []*container{collector(), verifier("NATS_URL", "")}, 3, "verifier: --nats-url points at 127.0.0.1, the container itself"},
		{"no verifier", []*container{collector()}, 3, "d: runs no verifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range tt.cs {
				if c.env["NATS_URL"] != nil && *c.env["NATS_URL"] == "" {
					delete(c.env, "NATS_URL")
				}
				if p := c.check(); len(p) > 0 {
					t.Fatalf("container problems: %q", p)
				}
			}
			problems := checkDeployment("d", tt.cs, tt.natsNodes, known)
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.want)):
				t.Errorf("problems %q, want one containing %q", problems, tt.want)
			}
		})
	}
}
