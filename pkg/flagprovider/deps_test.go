package flagprovider_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Applications embed this package, so it must not pull in the server-side
// dependencies: a database driver, a web framework or a NATS server.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool:", err)
		}
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/parityhq/parity/pkg/flagprovider").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/jackc/pgx", "github.com/labstack/echo", "github.com/nats-io/nats-server"}
	deps := strings.Fields(string(out))
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.Contains(dep, f) {
				t.Errorf("pkg/flagprovider depends on %s", dep)
			}
		}
	}
	for _, want := range []string{"github.com/nats-io/nats.go/jetstream", "github.com/open-feature/go-sdk/openfeature"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("go list -deps does not list %s; is the check looking at the right package?", want)
		}
	}
}
