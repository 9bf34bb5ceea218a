// Package natsembed runs a NATS server with JetStream inside the collector's
// process, so that one process is the whole system on a laptop. Data is kept
// in a local directory and survives restarts.
//
// Only cmd/collector imports it (through the collector package); client
// packages never do, so applications do not link the server.
package natsembed

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start starts a JetStream-enabled server listening on addr ("host:port";
// port -1 picks a free one) and storing in dir. It returns once the server
// accepts connections.
func Start(addr, dir string) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("natsembed: address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("natsembed: address %q: port must be -1 (any free port) or 0..65535", addr)
	}
	if dir == "" {
		return nil, fmt.Errorf("natsembed: a data directory is required")
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "parity-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("natsembed: server on %s not ready within 10s (is the port taken?)", addr)
	}
	return ns, nil
}
