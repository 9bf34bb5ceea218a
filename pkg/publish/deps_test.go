package publish_test

import (
	"testing"

	"github.com/parityhq/parity/internal/testutil"
)

// Applications embed this package, so it must not pull in the server-side
// dependencies.
func TestDependencies(t *testing.T) {
	testutil.NoServerDeps(t, "github.com/parityhq/parity/pkg/publish", "github.com/nats-io/nats.go")
}
