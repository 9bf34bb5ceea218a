package deployments

import (
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
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
	k, err := loadKustomization(kustomizeDir)
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
	k, err := loadKustomization(kustomizeDir)
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
	k, err := loadKustomization(kustomizeDir)
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
			if !contains(strList(dig(csc, "capabilities", "drop")), "ALL") {
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

	if !c.bin.listensOn() {
		for _, p := range c.ports {
			add("%s: the %s listens on no port", p.what, c.bin.name)
		}
		return problems
	}
	addr := c.eff["addr"]
	if addr == unknownValue {
		return problems
	}
	host, portStr, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		add("--addr %q: not host:port", addr)
		return problems
	}
	if isLoopback(host) {
		add("the %s listens on %s, unreachable from outside its container: set PARITY_ADDR=0.0.0.0:%d", c.bin.name, addr, port)
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
var sharedSettings = []string{"stream-replicas", "stream-max-bytes", "stream-max-age", "max-ack-pending", "database-url"}

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
	for _, c := range cs {
		if n, err := strconv.Atoi(c.eff["stream-replicas"]); err == nil && n > natsNodes {
			problems = append(problems, fmt.Sprintf("%s: stream replicas %d, but the deployment runs %d NATS servers", c.where, n, natsNodes))
		}
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
