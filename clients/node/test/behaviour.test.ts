// Behaviour beyond the matrix: timeouts and abort signals, bad input at
// construction and at call time, results that cannot be encoded, flag
// values that are not stages, sampling, the in-flight cap, and that no
// failure of the non-authoritative side ever becomes an unhandled rejection.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { Publisher, Reader, Writer, InvalidOptionError, inSample, type Pair, type PairPublisher } from "../src/index.js";
import { NATSServer, connectTo, createStream, readPairs, newFlags, until, FLAG_KEY, STAGE_ATTR } from "./helpers.js";

let server: NATSServer;
let nc: NatsConnection;
let pub: Publisher;
let flags: Awaited<ReturnType<typeof newFlags>>;
const unhandled: unknown[] = [];
const onUnhandled = (r: unknown): void => {
  unhandled.push(r);
};

before(async () => {
  process.on("unhandledRejection", onUnhandled);
  server = await NATSServer.start();
  nc = await connectTo(server.url);
  await createStream(nc);
  pub = new Publisher(nc, { reportIntervalMs: -1 });
  flags = await newFlags();
});

after(async () => {
  await pub.close({ timeoutMs: 10_000 });
  await nc.close();
  await server.stop();
  process.off("unhandledRejection", onUnhandled);
  assert.deepEqual(unhandled, [], "no unhandled rejections");
});

/** A publisher that keeps pairs in memory, for checks that need no stream. */
class Memory implements PairPublisher {
  pairs: Pair[] = [];
  publish(p: Pair): boolean {
    this.pairs.push(p);
    return true;
  }
}

const ok = (name: string) => async (id: number) => ({ path: name, id });
const base = (operation: string, publisher: PairPublisher = pub) => ({
  experiment: "behaviour",
  operation,
  flags,
  flagKey: FLAG_KEY,
  publisher,
  old: ok("old"),
  new: ok("new"),
});
const ecIn = (stage: string, key = "user-1", extra: Record<string, unknown> = {}) => ({ targetingKey: key, [STAGE_ATTR]: stage, ...extra });

test("bad config is refused at construction with the field named", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["no old", { old: undefined }, /old: missing or not a function/],
    ["no new", { new: "x" }, /new: missing or not a function/],
    ["bad experiment", { experiment: "a.b" }, /experiment: must be 1 to 64 characters/],
    ["long operation", { operation: "x".repeat(65) }, /operation: must be 1 to 64/],
    ["no flags", { flags: {} }, /flags: must be an OpenFeature client/],
    ["empty flag key", { flagKey: "" }, /flagKey: must be a non-empty string/],
    ["no publisher", { publisher: undefined }, /publisher: must have a publish/],
    ["timeout 0", { timeoutMs: 0 }, /timeoutMs: must be a number of ms > 0/],
    ["timeout NaN", { timeoutMs: NaN }, /timeoutMs/],
    ["negative sampling", { sampling: -1 }, /sampling: must be an integer >= 0, got -1/],
    ["fractional sampling", { sampling: 2.5 }, /sampling: must be an integer/],
    ["maxInFlight 0", { maxInFlight: 0 }, /maxInFlight: must be an integer >= 1/],
    ["unknown default stage", { defaultStage: "beta" }, /defaultStage: unknown stage "beta"/],
    ["compare not a function", { compare: 1 }, /compare: must be a function/],
  ];
  for (const [name, patch, re] of cases) {
    for (const Ctor of [Reader, Writer]) {
      assert.throws(() => new Ctor({ ...base("bad"), ...patch } as any), (e: unknown) => e instanceof InvalidOptionError && re.test((e as Error).message), `${name} (${Ctor.name})`);
    }
  }
  const popts: [Record<string, unknown>, RegExp][] = [
    [{ queueSize: -1 }, /queueSize: must be an integer >= 0/],
    [{ maxPending: 1.5 }, /maxPending/],
    [{ ackTimeoutMs: "5s" }, /ackTimeoutMs/],
    [{ onError: 3 }, /onError: must be a function/],
    [{ batchPairs: -1 }, /batchPairs: must be an integer >= 0/],
    [{ batchPairs: 1025, maxPending: 5000 }, /batchPairs: must be between 0 and 1024, got 1025/],
    [{ batchPairs: 100, maxPending: 50 }, /batchPairs \(100\) must not exceed maxPending \(50\)/],
    [{ batchBytes: 1_000_001 }, /batchBytes: must be between 0 and 1000000/],
    [{ batchBytes: 0.5 }, /batchBytes/],
    [{ lingerMs: -5 }, /lingerMs: must be an integer >= 0/],
  ];
  for (const [o, re] of popts) {
    assert.throws(() => new Publisher(nc, o as any), (e: unknown) => e instanceof InvalidOptionError && re.test((e as Error).message));
  }
});

test("a flag value that is not a stage, or a flag that fails, gives the default stage and is counted", async () => {
  const mem = new Memory();
  const r = new Reader({ ...base("flag-bad", mem), defaultStage: "shadow" });
  assert.deepEqual(await r.read(ecIn("bogus"), 1), { path: "old", id: 1 });
  const w = new Writer({ ...base("flag-type", mem), flagKey: "bool-flag" });
  assert.deepEqual(await w.write(ecIn("live"), 2), { path: "old", id: 2 }); // default off
  const throwing = new Reader({ ...base("flag-throw", mem), flags: { getStringDetails: () => Promise.reject(new Error("provider down")) } });
  assert.deepEqual(await throwing.read(ecIn("live"), 3), { path: "old", id: 3 });
  await r.wait();
  assert.equal(r.stats().flagErrors, 1);
  assert.equal(w.stats().flagErrors, 1);
  assert.equal(throwing.stats().flagErrors, 1);
  assert.equal(mem.pairs.length, 1, "the shadow default compared once");
  assert.deepEqual(mem.pairs[0]?.flag, { key: FLAG_KEY, variant: "bogus", reason: "ERROR" });
  assert.equal(mem.pairs[0]?.stage, "shadow");
});

test("a hung non-authoritative read times out, is aborted, and never delays or fails the caller", async () => {
  let aborted: unknown;
  const r = new Reader({
    ...base("hung"),
    timeoutMs: 50,
    new: (_id: number, { signal }) =>
      new Promise((_, reject) => {
        signal?.addEventListener("abort", () => {
          aborted = signal.reason;
          reject(signal.reason); // rejects after Parity stopped waiting: must not surface
        });
      }),
  });
  assert.deepEqual(await r.read(ecIn("shadow"), 7), { path: "old", id: 7 });
  assert.equal(r.stats().inFlight, 1, "the other side is still running when read returns");
  await r.wait({ timeoutMs: 10_000 });
  assert.ok(aborted instanceof DOMException && aborted.name === "TimeoutError", `signal reason ${String(aborted)}`);
  await pub.flush();
  const [p] = await readPairs(nc, "parity.pairs.behaviour.hung");
  assert.equal(p.candidate.status, "timeout");
  assert.match(p.candidate.error, /no answer within 50 ms/);
  assert.ok(p.candidate.duration_ns >= 50e6, `duration ${p.candidate.duration_ns}`);
  assert.equal(p.control.status, "ok");
  const s = r.stats();
  assert.equal(s.timeouts, 1);
  assert.equal(s.inFlight, 0);
});

test("a non-authoritative read that ignores its signal is abandoned at the timeout; the in-flight cap bounds them", async () => {
  const release: (() => void)[] = [];
  const mem = new Memory();
  const r = new Reader({ ...base("ignores", mem), timeoutMs: 30, maxInFlight: 2, new: () => new Promise((res) => release.push(() => res({ path: "new", id: 0 }))) });
  for (let i = 0; i < 3; i++) assert.deepEqual(await r.read(ecIn("shadow", `u${i}`), i), { path: "old", id: i });
  assert.equal(release.length, 2, "the third call must not start the new path");
  await r.wait({ timeoutMs: 10_000 });
  let s = r.stats();
  assert.equal(s.dropped, 1);
  assert.equal(s.published, 2);
  assert.equal(s.timeouts, 2);
  assert.equal(s.inFlight, 2, "abandoned functions count until they return");
  for (const f of release) f();
  await until("abandoned reads to return", () => r.stats().inFlight === 0);
  s = r.stats();
  assert.equal(s.offered, s.published + s.dropped + s.sampledOut);
  assert.ok(mem.pairs.every((p) => p.candidate.status === "timeout"));
});

test("cancelWithCaller: the caller's abort abandons the comparison", async () => {
  const mem = new Memory();
  const r = new Reader({ ...base("cancel", mem), cancelWithCaller: true, new: (_: number, { signal }) => new Promise((_r, rej) => signal?.addEventListener("abort", () => rej(signal.reason))) });
  const ac = new AbortController();
  const got = await r.read(ecIn("shadow"), 1, { signal: ac.signal });
  assert.deepEqual(got, { path: "old", id: 1 });
  ac.abort();
  await r.wait({ timeoutMs: 10_000 });
  assert.equal(mem.pairs[0]?.candidate.status, "error");
  assert.match(String(mem.pairs[0]?.candidate.error), /abandoned: the caller's signal was aborted/);
});

test("a non-authoritative write gets a signal aborted at the timeout and is marked timeout", async () => {
  const mem = new Memory();
  const w = new Writer({ ...base("write-timeout", mem), timeoutMs: 40, new: (_: number, { signal }) => new Promise((_r, rej) => signal?.addEventListener("abort", () => rej(new Error("aborted by signal")))) });
  assert.deepEqual(await w.write(ecIn("dualwrite"), 5), { path: "old", id: 5 });
  await w.wait();
  assert.equal(mem.pairs[0]?.candidate.status, "timeout");
  assert.equal(w.stats().timeouts, 1);
});

test("results that cannot be encoded are counted and published as an error of their side; the caller still gets them", async () => {
  const circular: any = { id: 1 };
  circular.self = circular;
  const cases: [string, unknown, RegExp][] = [
    ["bigint", { n: 10n }, /cannot encode the result as JSON: .*BigInt/],
    ["circular", circular, /cannot encode the result as JSON: .*circular/i],
    ["tojson-throws", { toJSON: () => { throw new Error("no JSON for you"); } }, /cannot encode the result as JSON: no JSON for you/],
    ["huge", { s: "x".repeat(600_000) }, /more than the 483616 a pair carries/],
  ];
  for (const [name, value, re] of cases) {
    const r = new Reader<number, unknown>({ ...base(`enc-${name}`), new: async () => value });
    const w = new Writer<number, unknown>({ ...base(`encw-${name}`), old: async () => value, snapshotResult: true });
    assert.deepEqual(await r.read(ecIn("shadow"), 1), { path: "old", id: 1 });
    assert.equal(await w.write(ecIn("dualwrite"), 1), value, "the caller gets its value, encodable or not");
    await r.wait();
    await w.wait();
    await pub.flush();
    const [rp] = await readPairs(nc, `parity.pairs.behaviour.enc-${name}`);
    assert.equal(rp.candidate.status, "error", name);
    assert.match(rp.candidate.error, re);
    assert.equal(rp.control.status, "ok");
    const [wp] = await readPairs(nc, `parity.pairs.behaviour.encw-${name}`);
    assert.equal(wp.control.status, "error");
    assert.match(wp.control.error, re);
    assert.equal(r.stats().marshalErrors, 1, name);
    assert.equal(w.stats().marshalErrors, 1, name);
  }
  assert.equal(pub.stats().failed, 0);
});

test("sampling is sticky per user and the same as the hash says; unsampled writes still write both", async () => {
  const mem = new Memory();
  let newWrites = 0;
  const r = new Reader({ ...base("sampled", mem), sampling: 4 });
  const w = new Writer({ ...base("sampledw", mem), sampling: 4, new: async (id: number) => (newWrites++, { path: "new", id }) });
  let wantIn = 0;
  for (let i = 0; i < 200; i++) {
    const key = `user-${i % 50}`;
    if (inSample(key, 4)) wantIn++;
    await r.read(ecIn("shadow", key), i);
    await w.write(ecIn("shadow", key), i);
  }
  await r.wait();
  await w.wait();
  assert.equal(newWrites, 200);
  assert.equal(r.stats().published, wantIn);
  assert.equal(r.stats().sampledOut, 200 - wantIn);
  assert.equal(w.stats().published, wantIn);
  assert.ok(wantIn > 0 && wantIn < 200);
  for (const p of mem.pairs) assert.ok(inSample(p.user.key, 4), p.user.key);
  // Per call: 0 forces out, 1 forces in.
  const before = r.stats().published;
  await r.read(ecIn("shadow", "forced"), 1, { sampling: 1 });
  await r.read(ecIn("shadow", "user-0"), 1, { sampling: 0 });
  await r.wait();
  assert.equal(r.stats().published, before + 1);
});

test("the user's attributes become segment attributes as in Go", async () => {
  const mem = new Memory();
  const r = new Reader({ ...base("attrs", mem) });
  await r.read({ targetingKey: "u", country: "IN", plan: "pro", seats: 12, ratio: 1234567.5, beta: true, when: new Date(0), "bad name": "x", nested: { a: 1 }, [STAGE_ATTR]: "shadow" }, 1);
  await r.wait();
  assert.deepEqual(mem.pairs[0]?.user, { key: "u", attrs: { country: "IN", plan: "pro", seats: "12", ratio: "1.2345675e+06", beta: "true", [STAGE_ATTR]: "shadow" } });
});

test("a publisher that throws or refuses never reaches the caller: counted as dropped", async () => {
  const r = new Reader({ ...base("pubthrows", { publish: () => { throw new Error("boom"); } }) });
  const w = new Writer({ ...base("pubrefuses", { publish: () => false }) });
  assert.deepEqual(await r.read(ecIn("live"), 1), { path: "new", id: 1 });
  assert.deepEqual(await w.write(ecIn("live"), 1), { path: "new", id: 1 });
  await r.wait();
  await w.wait();
  assert.equal(r.stats().dropped, 1);
  assert.equal(w.stats().dropped, 1);
});

test("a missing evaluation context or options is an anonymous user in the default stage, not an error", async () => {
  const mem = new Memory();
  const r = new Reader({ ...base("noctx", mem), defaultStage: "shadow" });
  const w = new Writer({ ...base("noctxw", mem) });
  assert.deepEqual(await r.read(undefined as any, 1, null as any), { path: "old", id: 1 });
  assert.deepEqual(await w.write(null as any, 2), { path: "old", id: 2 });
  await r.wait();
  assert.equal(r.stats().calls, 1);
});

test("a compare that throws leaves no verdict and counts a panic", async () => {
  const mem = new Memory();
  const r = new Reader({ ...base("cmp", mem), compare: () => { throw new Error("cmp"); } });
  await r.read(ecIn("shadow"), 1);
  await r.wait();
  assert.equal(mem.pairs[0]?.client_verdict, undefined);
  assert.equal(r.stats().panics, 1);
});

test("the OpenFeature transaction context supplies the user when the call's context has none, the call's attributes winning", async () => {
  const { OpenFeature, AsyncLocalStorageTransactionContextPropagator } = await import("@openfeature/server-sdk");
  OpenFeature.setTransactionContextPropagator(new AsyncLocalStorageTransactionContextPropagator());
  const mem = new Memory();
  const r = new Reader({ ...base("txctx", mem) });
  await new Promise<void>((resolve, reject) => {
    OpenFeature.setTransactionContext({ targetingKey: "tx-user", country: "US", plan: "pro" }, () => {
      r.read({ country: "IN", [STAGE_ATTR]: "shadow" }, 1).then(() => resolve(), reject);
    });
  });
  await r.wait();
  assert.deepEqual(mem.pairs[0]?.user, { key: "tx-user", attrs: { country: "IN", plan: "pro", [STAGE_ATTR]: "shadow" } });
});
