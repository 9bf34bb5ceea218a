package flagprovider_test

import (
	"context"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/flagprovider"
)

func Example() {
	nc, err := nats.Connect(nats.DefaultURL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	p, err := flagprovider.New(nc, flagprovider.Options{CacheFile: "/var/lib/myapp/parity-rollouts.json"})
	if err != nil {
		log.Fatal(err)
	}
	// A nil error means the provider serves the bucket's current documents,
	// or the cached ones (stale) when NATS is unreachable.
	if err := openfeature.SetProviderAndWait(p); err != nil {
		log.Printf("parity flags unavailable, using defaults: %v", err)
	}
	defer openfeature.Shutdown()

	client := openfeature.NewDefaultClient()
	ec := openfeature.NewEvaluationContext("user-42", map[string]any{"country": "NZ", "plan": "pro"})
	stage := envelope.Stage(client.String(context.Background(), "orders-migration", string(envelope.StageOff), ec))
	switch stage {
	case envelope.StageDualWrite:
		// write both stores, read the old one
	case envelope.StageLive:
		// read the new store
	}
}
