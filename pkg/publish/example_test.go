package publish_test

import (
	"context"
	"encoding/json"
	"log"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
)

// A hook publishes a pair per call and never waits for NATS; the application
// closes the publisher on shutdown.
func Example() {
	nc, err := nats.Connect(nats.DefaultURL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	p, err := publish.New(nc, publish.Options{
		OnError: func(err error) { log.Print(err) }, // never contains pair values
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			log.Print(err)
		}
		log.Printf("%+v", p.Stats())
	}()

	p.Publish(&envelope.Pair{ // ID, Time and Version are filled in
		Experiment: "checkout",
		Operation:  "get_user",
		Kind:       envelope.KindRead,
		Stage:      envelope.StageShadow,
		User:       envelope.User{Key: "user-42", Attrs: map[string]string{"country": "IN"}},
		Control:    envelope.Observation{Value: json.RawMessage(`{"name":"Ada"}`)},
		Candidate:  envelope.Observation{Value: json.RawMessage(`{"name":"Ada"}`)},
	})
}
