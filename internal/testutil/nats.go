package testutil

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// RunJetStream starts an embedded NATS server with JetStream on a random
// loopback port, storing in a temporary directory, and shuts it down when the
// test ends.
func RunJetStream(t testing.TB) *server.Server {
	t.Helper()
	return RunJetStreamIn(t, t.TempDir())
}

// RunJetStreamIn is [RunJetStream] with a chosen store directory, so a test
// can restart a server over the same data.
func RunJetStreamIn(t testing.TB, dir string) *server.Server {
	t.Helper()
	return RunJetStreamAt(t, dir, server.RANDOM_PORT)
}

// Connect opens a client connection to ns that is closed when the test ends.
func Connect(t testing.TB, ns *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("testutil: connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// RunJetStreamAt starts a JetStream server on a chosen port and store
// directory, so a test can stop a server and start it again where clients
// reconnect to it.
func RunJetStreamAt(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("testutil: nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("testutil: nats server not ready within 10s")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}
