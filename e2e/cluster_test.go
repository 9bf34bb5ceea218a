package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/publish"
)

// runCluster starts three embedded NATS servers with JetStream on loopback,
// routed to each other as one cluster, and waits until JetStream has a meta
// leader. The first server is the seed, on a cluster port chosen up front
// (it lists itself as its route, as JetStream wants every server to have
// one); the others pick their own ports and route to those started before
// them, so only one port is chosen outside its server. Each server stores in
// its own directory; all are shut down when the test ends.
func runCluster(t *testing.T) []*server.Server {
	t.Helper()
	servers := make([]*server.Server, 3)
	seedPort := freePort(t)
	routes := []string{fmt.Sprintf("nats://127.0.0.1:%d", seedPort)}
	for i := range servers {
		cluster := server.ClusterOpts{Name: "parity-e2e", Host: "127.0.0.1", Port: server.RANDOM_PORT}
		if i == 0 {
			cluster.Port = seedPort
		}
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: cluster,
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:   true, NoSigs: true,
		})
		if err != nil {
			t.Fatalf("nats server %d: %v", i+1, err)
		}
		ns.Start()
		t.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats server %s not ready within 10s", ns.Name())
		}
		servers[i] = ns
		if i > 0 {
			routes = append(routes, "nats://"+ns.ClusterAddr().String())
		}
	}
	nc := connectCluster(t, servers)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := js.AccountInfo(ctx); err != nil {
			return "JetStream not ready: " + err.Error()
		}
		for _, ns := range servers {
			if !ns.JetStreamIsCurrent() {
				return "JetStream on " + ns.Name() + " not current"
			}
		}
		return ""
	})
	return servers
}

func clusterURLs(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, ns := range servers {
		urls[i] = ns.ClientURL()
	}
	return strings.Join(urls, ",")
}

// connectCluster opens a connection that may use any of the servers and
// reconnects for ever; it is closed when the test ends.
func connectCluster(t *testing.T, servers []*server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(clusterURLs(servers), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streamLeader returns the name of the server leading the pair stream, or an
// error while there is none.
func streamLeader(js jetstream.JetStream) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natsnames.PairStream)
	if err != nil {
		return "", err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", errors.New("no stream leader")
	}
	return info.Cluster.Leader, nil
}

// TestClusterNodeLossCountsOnce runs the collector's two verifier workers
// against a three-node NATS cluster with the pair stream replicated three
// ways, and shuts down the node leading both the stream and the verifiers'
// consumer while the workers have a backlog and pairs keep arriving. Every
// pair whose publish JetStream acknowledged is counted exactly once per
// segment, and both workers keep counting after the loss.
//
// The truth stays exact because every pair of the main experiment is known
// to be stored once:
//
//   - a burst through the Go hook just before the loss and another after the
//     new leader is elected, each flushed with no pair failed or dropped;
//   - across the loss and the election, a steady stream of synchronous
//     JetStream publishes, one pair at a time, each retried with the same
//     Nats-Msg-Id until JetStream acknowledges it. A publish that timed out
//     may still have been stored; its retry then gets a duplicate ack, so
//     each pair is in the stream once whichever way its first attempt went.
//
// A second hook publishes steadily to another experiment across the loss, as
// an application would. It does not retry, and a pair it counts as failed
// (an ack that did not come in time) may still have been stored, so its
// truth is bounded: at least every pair it reports published, at most every
// one it published or failed.
// maxPublishAttempts bounds how often the cluster test's publisher retries
// one pair while the stream elects a leader (each attempt waits up to 2 s
// for an ack, then backs off 50 ms).
const maxPublishAttempts = 400

func TestClusterNodeLossCountsOnce(t *testing.T) {
	const experiment, hookExperiment = "e2e-cluster", "e2e-cluster-hook"
	start := time.Now()
	servers := runCluster(t)
	app, err := collector.Start(context.Background(), collector.Options{
		Addr:        "127.0.0.1:0",
		DatabaseURL: testutil.FreshDatabase(t),
		NATSURL:     clusterURLs(servers),
		Workers:     2,
		Verifier: verifier.Options{
			FlushInterval: 100 * time.Millisecond,
			AckWait:       5 * time.Second, // a lost ack is redelivered within the test
			Stream:        verifier.StreamOptions{Replicas: 3},
		},
	})
	if err != nil {
		t.Fatalf("start collector: %v", err)
	}
	started := time.Now()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	admin := connectCluster(t, servers)
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := js.Stream(context.Background(), natsnames.PairStream); err != nil || st.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("pair stream: %v, want 3 replicas", err)
	}
	counted := func(experiment string) int64 {
		var n int64
		for _, c := range apiCounts(t, app, experiment) {
			n += c.pairs
		}
		return n
	}
	judged := func() []uint64 {
		var out []uint64
		for _, w := range app.Workers() {
			out = append(out, w.Stats().Judged)
		}
		return out
	}

	// The truth of the main experiment, shared with the synchronous
	// publisher.
	now := time.Now().UTC()
	var truth struct {
		sync.Mutex
		want                map[string]counts
		next                int
		retries, duplicates int
		slowest             time.Duration
		lastErr             error
	}
	truth.want = map[string]counts{}
	pair := func() *envelope.Pair {
		truth.Lock()
		defer truth.Unlock()
		p, divergent := makePair(experiment, truth.next, now)
		truth.next++
		tally(truth.want, p, divergent)
		return p
	}
	pub, err := publish.New(connectCluster(t, servers), publish.Options{QueueSize: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	burst := func(n int) {
		t.Helper()
		for range n {
			if !pub.Publish(pair()) {
				t.Fatal("the hook dropped a pair")
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pub.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if s := pub.Stats(); s.Failed != 0 || s.Dropped != 0 {
			t.Fatalf("hook %+v: pairs failed to reach the stream", s)
		}
	}

	// The second hook publishes from now until after the election.
	var syncPublished atomic.Int64
	stop := make(chan struct{})
	var publishers sync.WaitGroup
	stopPublishers := sync.OnceFunc(func() { close(stop); publishers.Wait() })
	t.Cleanup(stopPublishers) // should the test end early
	hook, err := publish.New(connectCluster(t, servers), publish.Options{QueueSize: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	publishers.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			p, _ := makePair(hookExperiment, i, now)
			hook.Publish(p)
		}
	})

	// Both workers take part before anything is stopped. A worker still
	// idle while the other has judged 2,000 pairs of steady traffic is a
	// fault in itself (counted in pairs, not seconds, so that a busy machine
	// slows both sides alike); the test then waits longer, so that the loss
	// is still met by two working workers.
	const idleBound = 2000
	var idle time.Duration
	var judgedBeforeBoth uint64
	testutil.Eventually(t, 45*time.Second, func() string {
		idle = time.Since(started)
		per := judged()
		var total uint64
		for _, j := range per {
			total += j
		}
		judgedBeforeBoth = total
		for i, j := range per {
			if j == 0 {
				return fmt.Sprintf("worker %d has judged nothing while the others judged %d pairs; workers: %s", i, total, workerStats(app))
			}
		}
		return ""
	})
	if judgedBeforeBoth > idleBound {
		t.Errorf("a worker judged its first pair only after the others had judged %d pairs of steady traffic", judgedBeforeBoth)
	}

	// Then synchronous publishes, from now until after the election.
	syncJS, err := jetstream.New(connectCluster(t, servers))
	if err != nil {
		t.Fatal(err)
	}
	publishers.Go(func() {
		pace := time.NewTicker(5 * time.Millisecond) // at most 200 pairs/s, so the verifiers keep up
		defer pace.Stop()
		for {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			// Take the pair into the truth only once it is acknowledged.
			truth.Lock()
			p, divergent := makePair(experiment, truth.next, now)
			truth.next++
			truth.Unlock()
			b, err := envelope.Marshal(p)
			if err != nil {
				t.Error(err)
				return
			}
			began := time.Now()
			for attempt := 1; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				ack, err := syncJS.PublishMsg(ctx, goodMsg(b))
				cancel()
				truth.Lock()
				if err == nil {
					tally(truth.want, p, divergent)
					if ack.Duplicate {
						truth.duplicates++
					}
					truth.slowest = max(truth.slowest, time.Since(began))
				} else {
					truth.retries++
					truth.lastErr = err
				}
				truth.Unlock()
				if err == nil {
					break
				}
				if errors.Is(err, nats.ErrConnectionClosed) {
					return // the test is ending
				}
				// Bounded by attempts, not time: a leader election takes a few
				// of them; a stream that never answers fails the test.
				if attempt >= maxPublishAttempts {
					t.Errorf("pair %s not acknowledged after %d attempts: %v", p.ID, attempt, err)
					return
				}
				<-time.After(50 * time.Millisecond) // back off while the stream has no leader
			}
			syncPublished.Add(1)
		}
	})

	// The node to stop leads both the stream and the verifiers' consumer, so
	// that both fail over: move the stream's leadership to the consumer's
	// leader when they differ.
	cons, err := js.Consumer(context.Background(), natsnames.PairStream, natsnames.VerifierDurable)
	if err != nil {
		t.Fatal(err)
	}
	consumerLeader := cons.CachedInfo().Cluster.Leader
	for attempt := 1; ; attempt++ {
		leader, err := streamLeader(js)
		if err != nil {
			t.Fatal(err)
		}
		if leader == consumerLeader {
			break
		}
		if attempt > 3 {
			t.Fatalf("the stream stays led by %s, the consumer by %s", leader, consumerLeader)
		}
		req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, consumerLeader)
		resp, err := admin.Request("$JS.API.STREAM.LEADER.STEPDOWN."+natsnames.PairStream, []byte(req), 5*time.Second)
		if err != nil {
			t.Fatalf("stream leader step-down: %v", err)
		}
		var answer struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &answer); err != nil || answer.Error != nil {
			t.Fatalf("stream leader step-down: %s", resp.Data)
		}
		testutil.Eventually(t, 15*time.Second, func() string {
			if l, err := streamLeader(js); err != nil || l == leader {
				return fmt.Sprintf("stream leader after step-down: %q, %v", l, err)
			}
			return ""
		})
	}

	// A burst, so that the workers have a backlog and batches awaiting
	// their commit, and then the loss of the leader.
	const before = 4000
	burst(before)
	leader, err := streamLeader(js)
	if err != nil {
		t.Fatal(err)
	}
	if leader != consumerLeader {
		t.Fatalf("stream led by %s, consumer by %s", leader, consumerLeader)
	}
	countedAtLoss, judgedAtLoss, syncAtLoss := counted(experiment), judged(), syncPublished.Load()
	lossAt := time.Now()
	for _, ns := range servers {
		if ns.Name() == leader {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}
	// Watch the workers from the loss until everything is counted: when
	// each judges again, and the longest stretch in which neither received a
	// message, in time (logged) and in pairs the stream acknowledged to the
	// publishers meanwhile (asserted: a count, so a busy machine that slows
	// everyone alike does not fail the test). Pairs arrive throughout, so
	// the workers should never wait long.
	recovered := make([]time.Duration, len(judgedAtLoss))
	var longestStall time.Duration
	var stallPairs int64
	stored := func() int64 { return syncPublished.Load() + int64(hook.Stats().Published) }
	drained := make(chan struct{})
	var watching sync.WaitGroup
	watching.Go(func() {
		consumed := func() (n uint64) {
			for _, w := range app.Workers() {
				n += w.Stats().Consumed
			}
			return n
		}
		last, lastChange, storedAtChange := consumed(), time.Now(), stored()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-drained:
				return
			case <-t.Context().Done():
				return
			case <-tick.C:
			}
			for i, j := range judged() {
				if recovered[i] == 0 && j > judgedAtLoss[i] {
					recovered[i] = time.Since(lossAt)
				}
			}
			if n := consumed(); n != last {
				last, lastChange, storedAtChange = n, time.Now(), stored()
			}
			longestStall = max(longestStall, time.Since(lastChange))
			stallPairs = max(stallPairs, stored()-storedAtChange)
		}
	})
	var newLeader string
	testutil.Eventually(t, 30*time.Second, func() string {
		l, err := streamLeader(js)
		if err != nil {
			return "no new stream leader: " + err.Error()
		}
		if l == leader {
			return "the stream is still led by the stopped server " + l
		}
		newLeader = l
		return ""
	})
	election := time.Since(lossAt)
	syncAtElection := syncPublished.Load()
	testutil.Eventually(t, 30*time.Second, func() string {
		if n := syncPublished.Load() - syncAtElection; n < 200 {
			return fmt.Sprintf("%d pairs published synchronously since the election; waiting for 200", n)
		}
		return ""
	})
	stopPublishers()

	// Another burst after the election.
	const after = 2000
	burst(after)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hook.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Every message settled, then the counts.
	total := before + after + int(syncPublished.Load())
	testutil.Eventually(t, 45*time.Second, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, natsnames.PairStream, natsnames.VerifierDurable)
		if err != nil {
			return err.Error()
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err.Error()
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Sprintf("%d pairs pending, %d awaiting an ack; %d of %d counted; workers: %s",
				info.NumPending, info.NumAckPending, counted(experiment), total, workerStats(app))
		}
		return ""
	})
	close(drained)
	watching.Wait()
	truth.Lock()
	want := maps.Clone(truth.want)
	truth.Unlock()
	if msg := sameCounts(apiCounts(t, app, experiment), want); msg != "" {
		t.Errorf("after the loss of the stream leader: %s", msg)
	}
	hs, hookCounted := hook.Stats(), counted(hookExperiment)
	if hookCounted < int64(hs.Published) || hookCounted > int64(hs.Published+hs.Failed) {
		t.Errorf("hook across the loss: %d pairs counted, want between %d published and %d published or failed (%+v)",
			hookCounted, hs.Published, hs.Published+hs.Failed, hs)
	}

	// Both workers counted after the loss, neither stopped, and they were
	// not kept waiting. A pull request lost with the consumer's leader must
	// be renewed within seconds, not when the client's heartbeat check
	// gives up on it (after 30s by default).
	for i, d := range recovered {
		if d == 0 {
			t.Errorf("worker %d judged nothing after the loss", i)
		}
	}
	// Both publishers together offer at most 400 pairs/s: a pull renewed
	// at its 5s expiry lets at most ~2,000 wait, one renewed only when the
	// client's 30s heartbeat check gives up ~12,000.
	const stallBound = 4000
	if stallPairs > stallBound {
		t.Errorf("after the loss the workers received nothing while %d pairs were stored for them (%.1fs), want at most %d",
			stallPairs, longestStall.Seconds(), stallBound)
	}
	select {
	case err := <-app.Err():
		t.Errorf("a part of the collector stopped: %v", err)
	default:
	}
	t.Logf("both workers busy %.1fs after the collector started (%d pairs judged); %s, leading stream and consumer, stopped with %d of %d pairs counted; %s led after %.2fs; workers judged again %v after the loss, longest wait %v (%d pairs stored meanwhile); "+
		"%d pairs published synchronously (%d between the loss and the election) with %d retries, %d duplicate acks, slowest %v, last error %v; "+
		"hook across the loss %+v, %d counted; workers %s; %.1fs in all",
		idle.Seconds(), judgedBeforeBoth, leader, countedAtLoss, before+int(syncAtLoss), newLeader, election.Seconds(), recovered, longestStall.Round(time.Millisecond), stallPairs,
		syncPublished.Load(), syncAtElection-syncAtLoss, truth.retries, truth.duplicates, truth.slowest.Round(time.Millisecond), truth.lastErr,
		hs, hookCounted, workerStats(app), time.Since(start).Seconds())
}
