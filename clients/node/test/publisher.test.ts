// The publisher: counters that always add up, drops when the queue is full,
// msgID dedupe, invalid pairs reported by field without values, flush and
// close with deadlines, NATS going away and coming back, and an event loop
// that keeps turning while the queue is full and NATS is down.

import { test } from "node:test";
import assert from "node:assert/strict";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { NatsConnection } from "@nats-io/transport-node";
import { Publisher, Reader, DeadlineError, REPORT_SUBJECT, type Pair, type PublisherStats } from "../src/index.js";
import { SLICE_PAIRS } from "../src/publisher.js";
import { batchID } from "../src/envelope.js";
import { NATSServer, connectTo, createStream, readMessages, readPairs, newFlags, until, FLAG_KEY, STAGE_ATTR } from "./helpers.js";

function pair(i: number, extra: Partial<Pair> = {}): Pair {
  return {
    experiment: "pub",
    operation: "GetOrder",
    kind: "read",
    stage: "shadow",
    user: { key: `user-${i}`, attrs: { country: "IN" } },
    control: { value: { id: i, secret: "s3cr3t" }, duration_ns: 1000 },
    candidate: { value: { id: i, secret: "s3cr3t" }, duration_ns: 900 },
    ...extra,
  };
}

function invariant(s: PublisherStats): void {
  assert.equal(s.offered, s.enqueued + s.dropped, JSON.stringify(s));
  assert.equal(s.enqueued, s.published + s.failed + s.pending, JSON.stringify(s));
}

async function withServer(fn: (nc: NatsConnection, server: NATSServer) => Promise<void>): Promise<void> {
  const server = await NATSServer.start();
  const nc = await connectTo(server.url);
  try {
    await createStream(nc);
    await fn(nc, server);
  } finally {
    await nc.close().catch(() => {});
    await server.stop();
  }
}

test("publishes every pair once, with the msgID dedupe, and counts add up", async () => {
  await withServer(async (nc) => {
    const errors: Error[] = [];
    const pub = new Publisher(nc, { reportIntervalMs: -1, onError: (e) => errors.push(e) });
    for (let i = 0; i < 2000; i++) assert.equal(pub.publish(pair(i)), true);
    // The same id twice: JetStream stores it once, and both count as published.
    assert.ok(pub.publish(pair(0, { id: "dup-1" })));
    assert.ok(pub.publish(pair(1, { id: "dup-1" })));
    invariant(pub.stats());
    await pub.flush({ timeoutMs: 20_000 });
    const s = pub.stats();
    invariant(s);
    assert.deepEqual(s, { offered: 2002, enqueued: 2002, dropped: 0, published: 2002, failed: 0, pending: 0, queued: 0, duplicates: 1, batches: s.batches });
    // 2,001 distinct pairs in batches of at most 64: at least 32 messages,
    // far fewer than one per pair.
    assert.ok(s.batches >= 32 && s.batches < 200, `${s.batches} messages`);
    const stored = await readPairs(nc, "parity.pairs.pub.GetOrder");
    assert.equal(stored.length, 2001);
    assert.equal(new Set(stored.map((p) => p.id)).size, 2001);
    assert.equal(stored.filter((p) => p.id === "dup-1").length, 1);
    const p = stored.find((x) => x.user.key === "user-7");
    assert.equal(p.version, 1);
    assert.equal(p.msgID, p.batchID, "a batch's Nats-Msg-Id is its id");
    assert.deepEqual(p.control, { value: { id: 7, secret: "s3cr3t" }, duration_ns: 1000 });
    assert.deepEqual(errors, []);
    await pub.close();
  });
});

test("invalid pairs fail, counted and reported by field without their values", async () => {
  await withServer(async (nc) => {
    const errors: string[] = [];
    const pub = new Publisher(nc, { reportIntervalMs: -1, onError: (e) => errors.push(e.message) });
    pub.publish(pair(1, { kind: "delete" as any }));
    pub.publish(pair(2, { user: { key: "u", attrs: { "bad name": "s3cr3t" } } }));
    pub.publish(pair(3, { control: { status: "error", duration_ns: 1 } as any }));
    pub.publish(pair(4, { candidate: { value: 1, duration_ns: -1 } }));
    pub.publish(pair(5, { version: 2 }));
    pub.publish(null as any);
    await pub.flush();
    assert.deepEqual(pub.stats(), { offered: 6, enqueued: 5, dropped: 1, published: 0, failed: 5, pending: 0, queued: 0, duplicates: 0, batches: 0 });
    assert.deepEqual(errors, [
      'parity: invalid pair: field kind: must be "read" or "write", got "delete"',
      'parity: invalid pair: field user.attrs: attribute name "bad name" must be 1 to 64 characters of A-Z a-z 0-9 _ -',
      'parity: invalid pair: field control.error: missing while status is "error"',
      "parity: invalid pair: field candidate.duration_ns: negative",
      "parity: invalid pair: field version: unsupported version 2 (this build writes version 1)",
    ]);
    assert.ok(errors.every((e) => !e.includes("s3cr3t")));
    await pub.close();
  });
});

test("a full queue drops and counts; NATS down fails pairs at the ack timeout; the event loop keeps turning", async (t) => {
  const server = await NATSServer.start();
  const nc = await connectTo(server.url);
  await createStream(nc);
  const pub = new Publisher(nc, { queueSize: 1000, maxPending: 100, ackTimeoutMs: 300, reportIntervalMs: -1 });
  await server.stop(); // NATS is down from here on
  await until("the client to notice", () => nc.isClosed() || (nc as any).protocol?.connected === false);

  // A heartbeat on the event loop; between two beats the publisher may send
  // at most one slice, so the queue may shrink by at most SLICE_PAIRS.
  let beats = 0;
  let lastQueued = 0;
  let lastEnqueued = 0;
  let worstSlice = 0;
  let running = true;
  const beat = (): void => {
    const s = pub.stats();
    const sent = lastQueued + (s.enqueued - lastEnqueued) - s.queued;
    worstSlice = Math.max(worstSlice, sent);
    lastQueued = s.queued;
    lastEnqueued = s.enqueued;
    beats++;
    if (running) setImmediate(beat);
  };
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  setImmediate(beat);

  // Readers on the hot path, offering far more than the queue holds.
  const flags = await newFlags();
  const r = new Reader({ experiment: "down", operation: "op", flags, flagKey: FLAG_KEY, publisher: pub, old: async (i: number) => i, new: async (i: number) => i });
  let served = 0;
  // Every read is served: the caller never waits for the queue or NATS.
  for (let round = 0; round < 20; round++) {
    const beatsBefore = beats;
    const calls: Promise<number>[] = [];
    for (let i = 0; i < 500; i++) calls.push(r.read({ targetingKey: `u${i}`, [STAGE_ATTR]: "shadow" }, i));
    for (const v of await Promise.all(calls)) served += v >= 0 ? 1 : 0;
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setImmediate(res));
    assert.ok(beats > beatsBefore, `round ${round}: the heartbeat did not run`);
  }
  assert.equal(served, 10_000);
  await r.wait({ timeoutMs: 20_000 });
  const rs = r.stats();
  assert.equal(rs.offered, rs.published + rs.dropped);
  assert.ok(rs.dropped > 0, "the queue must have been full");
  // Everything still queued or in flight fails at its ack timeout or at close.
  await pub.close({ timeoutMs: 300 }).catch((e) => assert.ok(e instanceof DeadlineError, String(e)));
  running = false;
  h.disable();
  const s = pub.stats();
  invariant(s);
  assert.equal(s.pending, 0);
  assert.equal(s.published, 0);
  assert.equal(s.dropped, rs.dropped);
  assert.ok(s.failed > 0);
  assert.ok(worstSlice <= SLICE_PAIRS, `a slice sent ${worstSlice} pairs`);
  assert.ok(beats > 40);
  t.diagnostic(`event loop delay while NATS was down and the queue full: p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms, max ${(h.max / 1e6).toFixed(2)} ms; ${beats} heartbeats; largest slice ${worstSlice} pairs`);
  await nc.close().catch(() => {});
});

test("NATS restarting: pairs published after it is back are stored", async () => {
  const server = await NATSServer.start();
  const port = server.port;
  const nc = await connectTo(server.url);
  await createStream(nc);
  const pub = new Publisher(nc, { ackTimeoutMs: 2000, reportIntervalMs: -1 });
  await server.stop(true);
  const again = await NATSServer.start(port);
  try {
    await until("reconnect", async () => {
      try {
        await nc.flush();
        return true;
      } catch {
        return false;
      }
    });
    await createStream(nc).catch(() => {});
    for (let i = 0; i < 50; i++) pub.publish(pair(i));
    await pub.flush({ timeoutMs: 10_000 });
    assert.equal(pub.stats().published, 50);
    await pub.close();
  } finally {
    await nc.close().catch(() => {});
    await again.stop();
  }
});

test("flush and close honour their deadlines; close fails what is left and drops what comes after", async () => {
  const server = await NATSServer.start();
  const nc = await connectTo(server.url);
  await createStream(nc);
  const errors: Error[] = [];
  const pub = new Publisher(nc, { ackTimeoutMs: 600_000, reportIntervalMs: -1, onError: (e) => errors.push(e) });
  try {
    // Published while JetStream is reachable: flushed.
    for (let i = 0; i < 10; i++) pub.publish(pair(i));
    await pub.flush({ timeoutMs: 10_000 });
    assert.equal(pub.stats().published, 10);

    // NATS goes away: the next pairs never get an ack (the ack timeout is ten minutes).
    await server.stop();
    for (let i = 10; i < 30; i++) pub.publish(pair(i));
    await assert.rejects(pub.flush({ timeoutMs: 100 }), DeadlineError);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(pub.flush({ signal: ac.signal, timeoutMs: 600_000 }), DeadlineError);
    assert.equal(pub.stats().pending, 20);

    // close gives up at its deadline and counts what is left as failed.
    await assert.rejects(pub.close({ timeoutMs: 100 }), DeadlineError);
    assert.deepEqual(pub.stats(), { offered: 30, enqueued: 30, dropped: 0, published: 10, failed: 20, pending: 0, queued: 0, duplicates: 0, batches: 1 });
    assert.ok(errors.some((e) => /publisher closed: 20 pairs queued or awaiting an ack counted as failed/.test(e.message)), errors.map(String).join("; "));

    // Closed: drops and counts.
    assert.equal(pub.publish(pair(31)), false);
    assert.equal(pub.stats().dropped, 1);
    await pub.close(); // a second close is fine
  } finally {
    await nc.close().catch(() => {});
    await server.stop();
  }
});

test("reports its counters on parity.hooks.stats", async () => {
  await withServer(async (nc) => {
    const sub = nc.subscribe(REPORT_SUBJECT, { max: 1 });
    const pub = new Publisher(nc, { reportIntervalMs: 50, instance: "orders-api-1" });
    pub.publish(pair(1));
    for await (const m of sub) {
      const r = m.json<any>();
      assert.equal(r.instance, "orders-api-1");
      assert.equal(r.offered, 1);
      assert.ok("published" in r && "dropped" in r && "failed" in r && "time" in r);
    }
    await pub.close();
  });
});

test("discard drops and counts everything", async () => {
  const p = Publisher.discard();
  assert.equal(p.publish(pair(1)), false);
  await p.flush();
  await p.close();
  assert.deepEqual(p.stats(), { offered: 1, enqueued: 0, dropped: 1, published: 0, failed: 0, pending: 0, queued: 0, duplicates: 0, batches: 0 });
});

test("no stream for the subject: retried until the ack timeout, then failed with the reason", async () => {
  const server = await NATSServer.start();
  const nc = await connectTo(server.url);
  try {
    const errors: string[] = [];
    const pub = new Publisher(nc, { ackTimeoutMs: 300, reportIntervalMs: -1, onError: (e) => errors.push(e.message) });
    pub.publish(pair(1));
    await pub.flush({ timeoutMs: 10_000 });
    assert.deepEqual(pub.stats(), { offered: 1, enqueued: 1, dropped: 0, published: 0, failed: 1, pending: 0, queued: 0, duplicates: 0, batches: 0 });
    assert.deepEqual(errors, ["parity: publish parity.pairs.pub.GetOrder: no JetStream stream takes the subject (no responders)"]);
    await pub.close();
  } finally {
    await nc.close();
    await server.stop();
  }
});

test("a stream that appears while a batch is retried (a leader election) takes it, once", async () => {
  const server = await NATSServer.start();
  const nc = await connectTo(server.url);
  try {
    // The connection as the publisher sees it, counting its publishes of
    // pairs. The server handles this connection's messages in order, so the
    // first attempt, made before the stream is created, is refused.
    let attempts = 0;
    const counted = new Proxy(nc, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target);
        if (prop === "publish") {
          return (subj: string, ...rest: any[]) => {
            if (subj.startsWith("parity.pairs.")) attempts++;
            return (target.publish as any)(subj, ...rest);
          };
        }
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const pub = new Publisher(counted, { ackTimeoutMs: 30_000, reportIntervalMs: -1 });
    for (let i = 1; i <= 3; i++) pub.publish(pair(i, { id: `retried-${i}` }));
    // The first attempt is refused: no stream yet. Then the stream appears.
    await until("the first attempt", () => attempts > 0);
    await createStream(nc);
    await pub.flush({ timeoutMs: 30_000 });
    assert.deepEqual(pub.stats(), { offered: 3, enqueued: 3, dropped: 0, published: 3, failed: 0, pending: 0, queued: 0, duplicates: 0, batches: 1 });
    assert.ok(attempts >= 2, `${attempts} attempts: the refused batch was not sent again`);
    const stored = await readMessages(nc, "parity.pairs.pub.GetOrder");
    assert.equal(stored.length, 1);
    assert.equal(stored[0].version, 2);
    assert.deepEqual(stored[0].pairs.map((p: any) => p.id), ["retried-1", "retried-2", "retried-3"]);
    assert.equal(stored[0].msgID, batchID(["retried-1", "retried-2", "retried-3"]));
    await pub.close();
  } finally {
    await nc.close();
    await server.stop();
  }
});

test("batches: at most batchPairs pairs and batchBytes bytes per message, one subject each, the batch's id as Nats-Msg-Id", async () => {
  await withServer(async (nc) => {
    const pub = new Publisher(nc, { batchPairs: 10, batchBytes: 4096, reportIntervalMs: -1 });
    const ids: string[][] = [[], []];
    for (let i = 0; i < 300; i++) {
      const op = i % 3 === 0 ? "PlaceOrder" : "GetOrder";
      const p = pair(i, { operation: op, id: `b-${i}` });
      ids[op === "GetOrder" ? 0 : 1]!.push(p.id as string);
      assert.ok(pub.publish(p));
    }
    await pub.flush({ timeoutMs: 20_000 });
    const s = pub.stats();
    invariant(s);
    assert.equal(s.published, 300);
    for (const [k, subj] of ["parity.pairs.pub.GetOrder", "parity.pairs.pub.PlaceOrder"].entries()) {
      const msgs = await readMessages(nc, subj);
      const got: string[] = [];
      let batches = 0;
      for (const m of msgs) {
        const { msgID, ...env } = m;
        const bytes = Buffer.byteLength(JSON.stringify(env));
        if (m.version === 2) {
          batches++;
          assert.ok(m.pairs.length >= 2 && m.pairs.length <= 10, `${m.pairs.length} pairs`);
          assert.ok(bytes <= 4096, `a batch of ${bytes} bytes`);
          assert.equal(msgID, m.id);
          assert.equal(m.id, batchID(m.pairs.map((p: any) => p.id)));
          for (const p of m.pairs) {
            assert.equal(p.operation, subj.split(".").at(-1));
            got.push(p.id);
          }
        } else {
          assert.equal(msgID, m.id);
          got.push(m.id);
        }
      }
      assert.ok(batches > 0, `${subj}: no batch`);
      // Every pair once, in the order it was published.
      assert.deepEqual(got, ids[k]);
    }
    assert.equal(s.batches, (await readMessages(nc, "parity.pairs.pub.GetOrder")).length + (await readMessages(nc, "parity.pairs.pub.PlaceOrder")).length);
    await pub.close();
  });
});

test("batchPairs 1: every pair on its own as a version-1 envelope with its id as Nats-Msg-Id", async () => {
  await withServer(async (nc) => {
    const pub = new Publisher(nc, { batchPairs: 1, reportIntervalMs: -1 });
    for (let i = 0; i < 100; i++) pub.publish(pair(i));
    await pub.flush({ timeoutMs: 20_000 });
    assert.equal(pub.stats().published, 100);
    assert.equal(pub.stats().batches, 100);
    const msgs = await readMessages(nc, "parity.pairs.pub.GetOrder");
    assert.equal(msgs.length, 100);
    for (const m of msgs) {
      assert.equal(m.version, 1);
      assert.equal(m.msgID, m.id);
    }
    await pub.close();
  });
});

test("linger: a lone pair is sent once its linger passes, without a flush; flush sends open batches at once", async () => {
  await withServer(async (nc) => {
    const pub = new Publisher(nc, { reportIntervalMs: -1 });
    pub.publish(pair(1, { id: "lone-1" }));
    await until("the lone pair to be stored", async () => (await readPairs(nc, "parity.pairs.pub.GetOrder")).length === 1);
    await until("its ack", () => pub.stats().published === 1);
    await pub.close();

    // A linger of ten minutes: only flush can send these.
    const slow = new Publisher(nc, { lingerMs: 600_000, reportIntervalMs: -1 });
    for (let i = 0; i < 5; i++) slow.publish(pair(i, { operation: "Slow" }));
    await slow.flush({ timeoutMs: 20_000 });
    assert.equal(slow.stats().published, 5);
    assert.equal(slow.stats().batches, 1);
    await slow.close();
  });
});

test("the linger timer never keeps the event loop alive", async () => {
  // A connection that takes every message and never answers.
  const sent: string[] = [];
  const fake = {
    subscribe: () => ({ unsubscribe() {} }),
    publish: (subj: string) => {
      sent.push(subj);
    },
    isClosed: () => false,
  } as unknown as NatsConnection;
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  const before = timers();
  const pub = new Publisher(fake, { lingerMs: 600_000, ackTimeoutMs: 600_000, reportIntervalMs: -1 });
  try {
    pub.publish(pair(1));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(pub.stats().queued, 0, "the pair is in an open batch");
    assert.deepEqual(sent, [], "and not sent before its linger");
    assert.equal(timers(), before, "a timer of the publisher holds the event loop");
    // The flush's own deadline holds it, as the caller awaits the flush;
    // the ack sweep armed for the batch it sends does not.
    void pub.flush({ timeoutMs: 600_000 }).catch(() => {});
    await until("the flushed batch to be sent", () => sent.length === 1);
    assert.equal(timers(), before + 1, "the ack sweep holds the event loop");
  } finally {
    await pub.close({ timeoutMs: 1 }).catch(() => {});
  }
  assert.equal(pub.stats().pending, 0);
  assert.equal(timers(), before, "a timer outlives close");
});

test("the queue drains into batches with the same per-turn bound, and maxPending bounds pairs open and in flight", async () => {
  // A connection that never acknowledges: pairs stay in flight.
  let published = 0;
  const fake = {
    subscribe: () => ({ unsubscribe() {} }),
    publish: (_subj: string, data: string) => {
      const m = JSON.parse(data);
      published += m.version === 2 ? m.pairs.length : 1;
    },
    isClosed: () => false,
  } as unknown as NatsConnection;
  const pub = new Publisher(fake, { queueSize: 5000, maxPending: 300, batchPairs: 64, ackTimeoutMs: 600_000, reportIntervalMs: -1 });
  for (let i = 0; i < 2000; i++) pub.publish(pair(i, { operation: `Op${i % 7}` }));
  let turns = 0;
  let last = pub.stats().queued;
  while (pub.stats().queued > 1700 && turns < 100) {
    await new Promise((r) => setImmediate(r));
    const q = pub.stats().queued;
    assert.ok(last - q <= SLICE_PAIRS, `a turn took ${last - q} pairs`);
    last = q;
    turns++;
  }
  assert.ok(pub.stats().queued === 1700, `queued ${pub.stats().queued}: maxPending should stop the drain at 300 pairs`);
  assert.ok(published <= 300, `${published} pairs sent`);
  await pub.close({ timeoutMs: 1 }).catch(() => {});
  const s = pub.stats();
  invariant(s);
  assert.equal(s.failed, 2000);
});
