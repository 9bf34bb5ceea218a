package migration_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The packages applications import must not drag in a database driver, a
// web framework, a NATS server or (for the core) the Prometheus client.
func TestDependencies(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go") // the toolchain running this test
	for _, tc := range []struct {
		pkg       string
		allowed   []string // prefixes of the non-standard packages allowed
		forbidden []string
	}{
		{
			pkg: "github.com/parityhq/parity/pkg/migration",
			allowed: []string{
				"github.com/parityhq/parity/pkg/migration",
				"github.com/parityhq/parity/pkg/envelope",
				"github.com/parityhq/parity/pkg/natsnames", // the envelope's subjects
				"github.com/open-feature/go-sdk/openfeature",
				"github.com/google/go-cmp/cmp",
			},
			forbidden: []string{"github.com/jackc/pgx", "github.com/labstack/echo", "github.com/nats-io/nats-server",
				"github.com/prometheus/", "github.com/nats-io/nats.go"},
		},
		{
			pkg: "github.com/parityhq/parity/pkg/migration/parityprom",
			allowed: []string{
				"github.com/parityhq/parity/pkg/migration",
				"github.com/parityhq/parity/pkg/envelope",
				"github.com/parityhq/parity/pkg/natsnames", // the envelope's subjects
				"github.com/open-feature/go-sdk/openfeature",
				"github.com/google/go-cmp/cmp",
				"github.com/prometheus/",
				"github.com/beorn7/perks", "github.com/cespare/xxhash", "github.com/munnerz/goautoneg",
				"go.yaml.in/yaml", "google.golang.org/protobuf", "golang.org/x/sys",
			},
			forbidden: []string{"github.com/jackc/pgx", "github.com/labstack/echo", "github.com/nats-io/"},
		},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", tc.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) == 0 {
				t.Fatal("go list printed nothing")
			}
			for _, dep := range deps {
				for _, f := range tc.forbidden {
					if strings.HasPrefix(dep, f) {
						t.Errorf("%s imports %s", tc.pkg, dep)
					}
				}
				ok := false
				for _, a := range tc.allowed {
					ok = ok || strings.HasPrefix(dep, a)
				}
				if !ok {
					t.Errorf("%s imports %s, which is not on the allowed list", tc.pkg, dep)
				}
			}
		})
	}
}
