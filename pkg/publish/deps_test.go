package publish_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Applications embed this package, so it must not pull in the server-side
// dependencies.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/parityhq/parity/pkg/publish").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/jackc/", "github.com/labstack/", "github.com/nats-io/nats-server/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("pkg/publish depends on %s", dep)
			}
		}
	}
}
