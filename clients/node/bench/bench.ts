// npm run bench: what the Node client costs the application.
//
//  1. Latency added per wrapped call, on the event loop, at a steady rate:
//     a bare `await old(req)` and `await reader.read(ec, req)` alternate in
//     the same run (shadow stage: the other path runs too and a pair is
//     published; off stage: the flag evaluation only), p50 and p99 of each,
//     and the difference; and the OpenFeature evaluation alone, which every
//     wrapped call pays.
//  2. Pairs published per second: reads in the shadow stage as fast as the
//     loop allows, until JetStream has acknowledged every pair.
//  3. The publisher alone, in batches (the default) and one pair per message
//     (batchPairs 1), against the official JetStream client's js.publish of
//     the same envelopes, one per message: what a user would write without
//     Parity.
//
// It starts its own nats-server (JetStream, random port). Environment:
// BENCH_RATE calls/s (default 5000), BENCH_SECONDS per phase (default 5),
// BENCH_PAIRS for the throughput run (default 50000).

import { monitorEventLoopDelay } from "node:perf_hooks";
import { availableParallelism, loadavg } from "node:os";
import { InMemoryProvider, OpenFeatureAPI, type EvaluationContext } from "@openfeature/server-sdk";
import { jetstream } from "@nats-io/jetstream";
import { Publisher, Reader, encodePair, type Pair } from "../src/index.js";
import { NATSServer, connectTo, createStream } from "../test/helpers.js";

const rate = Number(process.env.BENCH_RATE ?? 5000);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const pairsN = Number(process.env.BENCH_PAIRS ?? 50_000);

interface Order {
  id: number;
  items: { sku: string; price: number }[];
  status: string;
}
const old = async (id: number): Promise<Order> => ({ id, items: [{ sku: "a", price: 100 }, { sku: "b", price: 250 }], status: "paid" });
const neu = async (id: number): Promise<Order> => ({ id, items: [{ sku: "a", price: 100 }, { sku: "b", price: 250 }], status: "paid" });

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const us = (ns: number): string => (ns / 1000).toFixed(2).padStart(8) + " µs";

const server = await NATSServer.start();
const nc = await connectTo(server.url);
await createStream(nc);
const api = OpenFeatureAPI.getInstance();
await api.setProviderAndWait(
  "bench",
  new InMemoryProvider({
    stage: { disabled: false, defaultVariant: "shadow", variants: { shadow: "shadow", off: "off" }, contextEvaluator: (c: EvaluationContext) => (c.off ? "off" : "shadow") },
  } as any),
);
const flags = api.getClient("bench");
const pub = new Publisher(nc, { queueSize: Math.max(8192, pairsN), reportIntervalMs: -1 });
const reader = new Reader<number, Order>({ experiment: "bench", operation: "GetOrder", flags, flagKey: "stage", publisher: pub, old, new: neu });

console.log(`# node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);

// The same read with a static evaluator instead of the OpenFeature SDK:
// Parity's own cost.
const staticReader = new Reader<number, Order>({
  experiment: "bench",
  operation: "GetOrderStatic",
  flags: { getStringDetails: async (flagKey: string) => ({ flagKey, flagMetadata: {}, value: "shadow", variant: "shadow", reason: "STATIC" }) },
  flagKey: "stage",
  publisher: pub,
  old,
  new: neu,
});

async function steady(label: string, ec: EvaluationContext, r: Reader<number, Order> = reader): Promise<void> {
  const bare: number[] = [];
  const wrapped: number[] = [];
  const flagOnly: number[] = [];
  const total = Math.floor(rate * seconds);
  const interval = 1000 / rate;
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    // Steady pacing: wait for the i-th slot (timers are coarse, so several
    // calls may share a wake-up, each timed on its own).
    const due = start + i * interval;
    if (performance.now() < due) await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    let t = process.hrtime.bigint();
    await old(i);
    bare.push(Number(process.hrtime.bigint() - t));
    t = process.hrtime.bigint();
    await r.read(ec, i);
    wrapped.push(Number(process.hrtime.bigint() - t));
    t = process.hrtime.bigint();
    await flags.getStringDetails("stage", "off", ec);
    flagOnly.push(Number(process.hrtime.bigint() - t));
  }
  await r.wait({ timeoutMs: 30_000 });
  const warm = Math.floor(total / 10); // drop the first tenth: JIT warm-up
  const b = bare.slice(warm);
  const w = wrapped.slice(warm);
  const f = flagOnly.slice(warm);
  const [b50, b99, w50, w99] = [pct(b, 50), pct(b, 99), pct(w, 50), pct(w, 99)];
  console.log(`${label} at ${rate}/s, ${w.length} calls:`);
  console.log(`  bare call      p50 ${us(b50)}  p99 ${us(b99)}`);
  console.log(`  wrapped read   p50 ${us(w50)}  p99 ${us(w99)}`);
  console.log(`  added          p50 ${us(w50 - b50)}  p99 ${us(w99 - b99)}`);
  console.log(`  of which the OpenFeature evaluation alone: p50 ${us(pct(f, 50))}  p99 ${us(pct(f, 99))}`);
}

await steady("shadow stage (both paths, pair published)", { targetingKey: "user-1", country: "IN", plan: "pro" });
await steady("shadow stage with a static flag evaluator instead of the OpenFeature SDK (Parity's own cost)", { targetingKey: "user-1", country: "IN", plan: "pro" }, staticReader);
await steady("off stage (flag evaluation only)", { targetingKey: "user-1", country: "IN", plan: "pro", off: true });
await pub.flush({ timeoutMs: 60_000 });

// Throughput: reads in batches as fast as the loop allows.
const before = pub.stats();
const t0 = performance.now();
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
for (let i = 0; i < pairsN; i += 64) {
  const batch: Promise<Order>[] = [];
  for (let j = i; j < Math.min(pairsN, i + 64); j++) batch.push(reader.read({ targetingKey: `user-${j}`, country: "US", plan: "free" }, j));
  await Promise.all(batch);
}
const called = performance.now();
await reader.wait({ timeoutMs: 60_000 });
await pub.flush({ timeoutMs: 120_000 });
const t1 = performance.now();
h.disable();
const after = pub.stats();
const published = after.published - before.published;
console.log(`throughput: ${pairsN} shadow reads in ${((called - t0) / 1000).toFixed(2)} s (${Math.round(pairsN / ((called - t0) / 1000))} calls/s);`);
console.log(`  ${published} pairs published and acknowledged in ${((t1 - t0) / 1000).toFixed(2)} s: ${Math.round(published / ((t1 - t0) / 1000))} pairs/s in ${after.batches - before.batches} messages; dropped ${after.dropped - before.dropped}, failed ${after.failed - before.failed}`);
console.log(`  event loop delay p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms, max ${(h.max / 1e6).toFixed(2)} ms`);

// The publisher alone against a reference in the same run: the official
// JetStream client's async publish (js.publish, msgID, 4000 in flight) of the
// same envelopes already encoded.
const mk = (i: number, op: string): Pair => ({
  experiment: "bench",
  operation: op,
  kind: "read",
  stage: "shadow",
  user: { key: `user-${i}`, attrs: { country: "US", plan: "free" } },
  control: { value: { id: i, items: [{ sku: "a", price: 100 }, { sku: "b", price: 250 }], status: "paid" }, duration_ns: 1200 },
  candidate: { value: { id: i, items: [{ sku: "a", price: 100 }, { sku: "b", price: 250 }], status: "paid" }, duration_ns: 900 },
});
{
  const alone = async (label: string, op: string, opts: { batchPairs?: number }): Promise<number> => {
    const p2 = new Publisher(nc, { queueSize: pairsN, reportIntervalMs: -1, ...opts });
    const c0 = process.cpuUsage();
    const s0 = performance.now();
    for (let i = 0; i < pairsN; i++) p2.publish(mk(i, op));
    await p2.flush({ timeoutMs: 120_000 });
    const secs = (performance.now() - s0) / 1000;
    const cpu = process.cpuUsage(c0);
    const st = p2.stats();
    await p2.close();
    const rate = st.published / secs;
    console.log(`publisher alone, ${label}: ${Math.round(rate)} pairs/s encoded, published and acknowledged, in ${st.batches} messages (${(st.published / st.batches).toFixed(1)} pairs each); Node CPU ${((cpu.user + cpu.system) / st.published).toFixed(1)} µs per pair`);
    return rate;
  };
  const ours = await alone("batches (default)", "Pub", {});
  const single = await alone("batchPairs 1 (version 1, one pair per message)", "PubSingle", { batchPairs: 1 });

  const js = jetstream(nc, { timeout: 5000 });
  const payloads = Array.from({ length: pairsN }, (_, i) => {
    const p = mk(i, "Ref");
    return { id: `ref-${i}`, data: encodePair({ ...p, id: `ref-${i}` }) };
  });
  const r0 = performance.now();
  let next = 0;
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    let inflight = 0;
    const pump = (): void => {
      while (inflight < 4000 && next < pairsN) {
        const m = payloads[next++]!;
        inflight++;
        js.publish("parity.pairs.bench.Ref", m.data, { msgID: m.id }).then(() => {
          inflight--;
          if (++acked === pairsN) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  const ref = acked / ((performance.now() - r0) / 1000);
  console.log(`  reference (js.publish of pre-encoded envelopes, one per message): ${Math.round(ref)} pairs/s`);
  console.log(`  ratio to the reference: batches ${(ours / ref).toFixed(2)}, batchPairs 1 ${(single / ref).toFixed(2)}`);
}

await pub.close({ timeoutMs: 30_000 });
await nc.close();
await server.stop();
