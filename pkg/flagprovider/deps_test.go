package flagprovider_test

import (
	"testing"

	"github.com/parityhq/parity/internal/testutil"
)

// Applications embed this package, so it must not pull in the server-side
// dependencies: a database driver, a web framework or a NATS server.
func TestDependencies(t *testing.T) {
	testutil.NoServerDeps(t, "github.com/parityhq/parity/pkg/flagprovider",
		"github.com/nats-io/nats.go/jetstream", "github.com/open-feature/go-sdk/openfeature")
}
