package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/parityhq/parity/examples/orders/service"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
)

func TestParseFlags(t *testing.T) {
	opts, rate, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := service.DefaultOptions(); opts.Addr != want.Addr || opts.NATSURL != want.NATSURL || !opts.CreateStream ||
		!opts.SeedBugs || opts.BugCountry != "" || opts.Rollout != service.DefaultRollout() || rate != 0 {
		t.Errorf("defaults: %+v, rate %d", opts, rate)
	}
	opts, rate, err = parseFlags([]string{"--traffic", "50", "--create-stream=false", "--seed-bugs=false",
		"--bug-country", "IN", "--segment-stage", "live", "--default-stage", "freeze"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.CreateStream || opts.SeedBugs || opts.BugCountry != "IN" || rate != 50 ||
		opts.Rollout != (service.Rollout{TestingGroup: envelope.StageLive, Segments: envelope.StageLive, Everyone: envelope.StageFreeze}) {
		t.Errorf("flags: %+v, rate %d", opts, rate)
	}
	if _, _, err := parseFlags([]string{"--segment-stage", "sideways"}); err == nil {
		t.Error("an unknown stage was accepted")
	}
}

// TestRun runs the command's service with its own traffic until the
// context ends.
func TestRun(t *testing.T) {
	testutil.RequirePostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	opts, _, err := parseFlags([]string{"--addr", addr, "--nats-url", "embedded",
		"--admin-url", testutil.PostgresURL(), "--old-url", testutil.FreshDatabase(t), "--new-url", testutil.FreshDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- run(runCtx, opts, 100) }()
	testutil.Eventually(t, 30*time.Second, func() string {
		resp, err := http.Get("http://" + addr + "/debug/parity")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var st struct {
			GetOrder struct{ Published int } `json:"get_order"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return err.Error()
		}
		if st.GetOrder.Published < 10 {
			return "too few pairs published yet"
		}
		return ""
	})
	stop()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run still running 20s after its context ended")
	}
}
