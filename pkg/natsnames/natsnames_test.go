package natsnames_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/parityhq/parity/pkg/natsnames"
)

// TestImportsNothing: client and server packages both import this one, so
// it must stay free of dependencies (not only of server ones).
func TestImportsNothing(t *testing.T) {
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps",
		"github.com/parityhq/parity/pkg/natsnames").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, ".") && dep != "github.com/parityhq/parity/pkg/natsnames" {
			t.Errorf("natsnames depends on %s", dep)
		}
	}
}

func TestPairSubject(t *testing.T) {
	if got := natsnames.PairSubject("orders-db", "GetOrder"); got != "parity.pairs.orders-db.GetOrder" {
		t.Errorf("PairSubject = %q", got)
	}
	if natsnames.PairSubjects != "parity.pairs.>" {
		t.Errorf("PairSubjects = %q", natsnames.PairSubjects)
	}
}
