package deployments

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the module root: the Docker build context, and where the
// binaries are built from.
const repoRoot = ".."

// commands are the Parity binaries the deployment files may run; each is
// built from ./cmd/<name>.
var commands = []string{"collector", "verifier"}

// binary is what one Parity command accepts, read from its -h output.
type binary struct {
	name  string
	flags map[string]*flagSpec // by flag name
	envs  map[string]*flagSpec // by environment variable
}

type flagSpec struct {
	name   string
	typ    string // as -h prints it: string, int, duration...; "" for a bool
	env    string // "" when the flag has no variable
	def    string // the default as -h prints it, unquoted
	isBool bool   // takes no value on the command line
}

// goRuntimeEnv are variables the Go runtime reads in any Go binary; a
// container may set them although no Parity flag names them.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true, "GOTRACEBACK": true}

var built struct {
	once sync.Once
	dir  string
	bins map[string]*binary
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binaries builds the commands once per test binary and returns what each
// accepts, by name.
func binaries(t *testing.T) map[string]*binary {
	t.Helper()
	built.once.Do(func() { built.bins, built.err = buildBinaries() })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bins
}

func buildBinaries() (map[string]*binary, error) {
	dir, err := os.MkdirTemp("", "parity-deployments-")
	if err != nil {
		return nil, err
	}
	built.dir = dir
	args := []string{"build", "-buildvcs=false", "-o", dir + string(filepath.Separator)}
	for _, c := range commands {
		args = append(args, "./cmd/"+c)
	}
	build := exec.Command("go", args...)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// Read every source file of the binaries in this process, so that go
	// test's cache, which sees only this process's file accesses, reruns the
	// test when a flag changes.
	var pkgs []string
	for _, c := range commands {
		pkgs = append(pkgs, "./cmd/"+c)
	}
	files, err := goListFiles(pkgs)
	if err != nil {
		return nil, err
	}
	for _, f := range append(files, "go.mod", "go.sum") {
		if _, err := os.ReadFile(filepath.Join(repoRoot, f)); err != nil {
			return nil, err
		}
	}

	bins := map[string]*binary{}
	for _, c := range commands {
		// -h prints the usage and exits with status 2.
		out, _ := exec.Command(filepath.Join(dir, c), "-h").CombinedOutput()
		b, err := parseUsage(c, string(out))
		if err != nil {
			return nil, err
		}
		bins[c] = b
	}
	return bins, nil
}

var (
	// "  -addr string", "  -demo", or a one-letter flag with its usage on the
	// same line: "  -v\tverbose".
	usageFlag    = regexp.MustCompile(`^  -(\S+)(?: (\S+))?(?:\t(.*))?$`)
	usageEnv     = regexp.MustCompile(`\(env ([A-Za-z_][A-Za-z0-9_]*)\)`)
	usageDefault = regexp.MustCompile(`\(default (.*)\)$`)
)

// parseUsage reads the flags, their variables and defaults from the output
// of flag.PrintDefaults, with the "(env NAME)" markers cli.FlagSet.Env adds.
func parseUsage(name, out string) (*binary, error) {
	if !strings.Contains(out, "Usage of "+name+":") {
		return nil, fmt.Errorf("%s -h printed no usage:\n%s", name, out)
	}
	b := &binary{name: name, flags: map[string]*flagSpec{}, envs: map[string]*flagSpec{}}
	var cur *flagSpec
	var usage []string
	finish := func() {
		if cur == nil {
			return
		}
		text := strings.Join(usage, " ")
		if m := usageEnv.FindAllStringSubmatch(text, -1); len(m) > 0 {
			cur.env = m[len(m)-1][1]
			b.envs[cur.env] = cur
		}
		if m := usageDefault.FindStringSubmatch(text); m != nil {
			cur.def = m[1]
			if s, err := strconv.Unquote(m[1]); err == nil {
				cur.def = s
			}
		}
		b.flags[cur.name] = cur
	}
	for line := range strings.SplitSeq(out, "\n") {
		if m := usageFlag.FindStringSubmatch(line); m != nil {
			finish()
			cur = &flagSpec{name: m[1], typ: m[2], isBool: m[2] == ""}
			usage = []string{m[3]}
			if cur.isBool {
				cur.def = "false"
			}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    ") {
			usage = append(usage, strings.TrimSpace(line))
		}
	}
	finish()
	if len(b.flags) < 3 || len(b.envs) < 3 {
		return nil, fmt.Errorf("%s -h: read only %d flags and %d variables; has the usage format changed?\n%s", name, len(b.flags), len(b.envs), out)
	}
	return b, nil
}

func (b *binary) flagNames() []string { return sortedKeys(b.flags) }
func (b *binary) envNames() []string  { return sortedKeys(b.envs) }

// listenFlags are the flags that set a binary's HTTP listen address
// (collector --addr, verifier --http-addr); a binary has at most one. The
// value "-" means no listener.
var listenFlags = []string{"addr", "http-addr"}

// listenFlag returns the binary's listen-address flag, or "".
func (b *binary) listenFlag() string {
	for _, f := range listenFlags {
		if b.flags[f] != nil {
			return f
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// suggest returns ` (did you mean "x"?)` for the closest known name, or "".
func suggest(name string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func TestParseUsage(t *testing.T) {
	out := `Usage of collector:
  -addr string
    	HTTP listen address (env PARITY_ADDR) (default "127.0.0.1:8080")
  -demo
    	publish demo traffic (env PARITY_DEMO)
  -flush-interval duration
    	longest wait (at most 1s) (env PARITY_FLUSH_INTERVAL) (default 500ms)
  -v	verbose
flag: help requested
`
	b, err := parseUsage("collector", out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]flagSpec{
		"addr":           {name: "addr", typ: "string", env: "PARITY_ADDR", def: "127.0.0.1:8080"},
		"demo":           {name: "demo", env: "PARITY_DEMO", def: "false", isBool: true},
		"flush-interval": {name: "flush-interval", typ: "duration", env: "PARITY_FLUSH_INTERVAL", def: "500ms"},
		"v":              {name: "v", def: "false", isBool: true},
	}
	if len(b.flags) != len(want) {
		t.Errorf("flags = %v, want %v", b.flagNames(), sortedKeys(want))
	}
	for name, w := range want {
		if got := b.flags[name]; got == nil || *got != w {
			t.Errorf("flag %s = %+v, want %+v", name, got, w)
		}
	}
	if b.envs["PARITY_ADDR"] != b.flags["addr"] {
		t.Errorf("PARITY_ADDR does not map to --addr")
	}
}
