package flagprovider_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/flagprovider"
	"github.com/parityhq/parity/pkg/rollout"
)

// AppPermissions are the NATS permissions an application needs to read the
// rollout flags, as deployments/README.md lists them.
var AppPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Allow: []string{
		"$JS.API.STREAM.INFO.KV_" + rollout.KVBucket,
		"$JS.API.CONSUMER.CREATE.KV_" + rollout.KVBucket + ".>",
		"$JS.API.CONSUMER.DELETE.KV_" + rollout.KVBucket + ".>",
	}},
	Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
}

// TestLeastPermissions: a provider whose NATS user has only AppPermissions
// gets the rollout and its changes, and cannot write the bucket.
func TestLeastPermissions(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "collector", Password: "collector-secret"},
			{Username: "app", Password: "app-secret", Permissions: AppPermissions},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	connect := func(user, pass string) *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(user, pass))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	e := &env{nc: connect("collector", "collector-secret")}
	e.kv = createBucket(t, e.nc)
	e.put(t, doc("orders", 1, livePlan(100)))

	app := connect("app", "app-secret")
	p := newProvider(t, app, flagprovider.Options{})
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatalf("Init with the least permissions: %v", err)
	}
	fc := openfeature.FlattenedContext{openfeature.TargetingKey: "u1"}
	if got := p.StringEvaluation(context.Background(), "orders", "off", fc).Value; got != string(live) {
		t.Fatalf("evaluation = %q, want live", got)
	}
	e.put(t, doc("orders", 2, livePlan()))
	testutil.Eventually(t, 5*time.Second, func() string {
		if p.StringEvaluation(context.Background(), "orders", "off", fc).Value == string(live) {
			return "the change did not reach the provider"
		}
		return ""
	})
	if err := app.Publish("$KV."+rollout.KVBucket+".orders", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := app.Flush(); err != nil {
		t.Fatal(err)
	}
	if lastErr := app.LastError(); lastErr == nil {
		t.Error("the application may write the bucket")
	}
}
