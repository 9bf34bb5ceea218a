package testutil

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ServerDeps are the module paths a package that applications embed must
// not depend on: a database driver, a web framework and a NATS server.
var ServerDeps = []string{"github.com/jackc/", "github.com/labstack/", "github.com/nats-io/nats-server/"}

// NoServerDeps fails t if pkg depends, directly or not, on any of
// [ServerDeps], or if it does not depend on every package in want (a check
// that go list looked at the right package).
func NoServerDeps(t *testing.T, pkg string, want ...string) {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := map[string]bool{}
	for _, dep := range strings.Fields(string(out)) {
		deps[dep] = true
		for _, f := range ServerDeps {
			if strings.HasPrefix(dep, f) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
	for _, w := range want {
		if !deps[w] {
			t.Errorf("go list -deps %s does not list %s; is the check looking at the right package?", pkg, w)
		}
	}
}
