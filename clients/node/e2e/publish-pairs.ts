// publish-pairs is run by the Go end-to-end test (e2e/node_test.go): it
// publishes PAIRS calls through the Node client's Reader and Writer to the
// JetStream at NATS_URL (in batches, or one pair per message with
// BATCH_PAIRS=1), in four segments with known divergence, and prints
// one JSON line with what it did. The Go test checks that Parity's verifiers
// and collector count exactly that per segment.

import { connect } from "@nats-io/transport-node";
import { InMemoryProvider, OpenFeature, type EvaluationContext } from "@openfeature/server-sdk";
import { Publisher, Reader, Writer } from "../src/index.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const experiment = process.env.EXPERIMENT ?? "node-e2e";
const n = Number(process.env.PAIRS ?? "2000");
// BATCH_PAIRS=1 publishes every pair on its own (version 1); unset: batches, the default.
const batchPairs = process.env.BATCH_PAIRS === undefined ? undefined : Number(process.env.BATCH_PAIRS);
// PACE_MS: a pause after every 200 calls, so that pairs keep flowing while a test breaks something.
const paceMs = Number(process.env.PACE_MS ?? "0");

// Segment i%4; pair k of a segment diverges when k % every == 0 (every 0: never).
const segments = [
  { country: "IN", plan: "pro", every: 10 },
  { country: "US", plan: "free", every: 0 },
  { country: "DE", plan: "pro", every: 100 },
  { country: "BR", plan: "free", every: 4 },
];

interface Req {
  i: number;
  divergent: boolean;
}
interface Order {
  id: number;
  items: { sku: string; price: number }[];
  status: string;
}
// The status holds what JSON.stringify writes raw and Go's encoder escapes
// (<, >, &, U+2028, U+2029), a character outside the BMP and a lone
// surrogate (written as an escape): Go's decoder must take Node's bytes as
// they are, and both sides alike, so these pairs match.
const status = "paid <b>&amp;</b>\u2028\u2029 é 😀 \ud800";
const order = (r: Req, price: number): Order => ({ id: r.i, items: [{ sku: "a", price: 100 }, { sku: "b", price }], status });

await OpenFeature.setProviderAndWait(
  new InMemoryProvider({
    // IN reads from the new database already (live); everyone else shadows.
    "orders-stage": {
      disabled: false,
      defaultVariant: "shadow",
      variants: { shadow: "shadow", live: "live" },
      contextEvaluator: (ctx: EvaluationContext) => (ctx.country === "IN" ? "live" : "shadow"),
    },
  } as any),
);
const flags = OpenFeature.getClient();
const nc = await connect({ servers: url });
const pub = new Publisher(nc, { queueSize: n + 10, batchPairs });
const common = { experiment, flags, flagKey: "orders-stage", publisher: pub };
const getOrder = new Reader<Req, Order>({
  ...common,
  operation: "GetOrder",
  old: async (r) => order(r, 250),
  new: async (r) => order(r, r.divergent ? 249 : 250),
});
const placeOrder = new Writer<Req, Order>({
  ...common,
  operation: "PlaceOrder",
  old: async (r) => order(r, 250),
  new: async (r) => order(r, r.divergent ? 249 : 250),
});

const want: Record<string, { pairs: number; divergent: number }> = {};
const calls: Promise<unknown>[] = [];
for (let i = 0; i < n; i++) {
  const s = segments[i % segments.length]!;
  const k = Math.floor(i / segments.length);
  const divergent = s.every > 0 && k % s.every === 0;
  const key = `country=${s.country},plan=${s.plan}`;
  want[key] ??= { pairs: 0, divergent: 0 };
  want[key].pairs++;
  if (divergent) want[key].divergent++;
  const ec = { targetingKey: `user-${i}`, country: s.country, plan: s.plan };
  calls.push(i % 5 === 4 ? placeOrder.write(ec, { i, divergent }) : getOrder.read(ec, { i, divergent }));
  if (calls.length >= 200) {
    await Promise.all(calls.splice(0));
    if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
  }
}
await Promise.all(calls);
await getOrder.wait({ timeoutMs: 30_000 });
await placeOrder.wait({ timeoutMs: 30_000 });

// Edge cases, in their own experiment: every one must be a valid envelope
// that the Go verifier judges (none dead-lettered). Unicode and long keys,
// more attributes than a pair carries, long multi-byte values, quotes and
// newlines in errors, a skipped write, a timeout, a synchronous throw, a
// result JSON cannot encode.
const edgeExperiment = `${experiment}-edges`;
const longError = 'quote " backslash \\ newline \n tab \t ünïcödé 🙂 '.repeat(200);
const edgeRead = new Reader<number, unknown>({
  experiment: edgeExperiment,
  operation: "EdgeRead",
  flags,
  flagKey: "orders-stage",
  publisher: pub,
  timeoutMs: 50,
  old: async (i) => ({ i, text: 'a "quoted"\nline ünïcödé 🙂', nested: [[1, 2.5, -0], { k: null }], big: 9007199254740991 }),
  new: (i) => {
    switch (i % 5) {
      case 0:
        return Promise.reject(new Error(longError));
      case 1:
        return new Promise(() => {}); // never answers: timeout
      case 2:
        throw new Error("new exploded"); // synchronously: panic
      case 3:
        return Promise.resolve({ n: 10n }); // BigInt: cannot be encoded
    }
    return Promise.resolve({ i, text: "different" });
  },
});
const edgeWrite = new Writer<number, unknown>({
  experiment: edgeExperiment,
  operation: "EdgeWrite",
  flags,
  flagKey: "orders-stage",
  publisher: pub,
  old: async () => {
    throw new Error("duplicate key value violates unique constraint");
  },
  new: async () => ({ rows_affected: 1 }),
});
const manyAttrs: Record<string, unknown> = { country: "BR", plan: "pro", seats: 12, ratio: 1234567.5, beta: true, long: "é".repeat(200), "bad name": "x" };
for (let a = 0; a < 20; a++) manyAttrs[`a${a}`] = `v${a}`;
let edges = 0;
for (let i = 0; i < 5; i++) {
  const ec = { targetingKey: `ünïcödé-user-🙂-${i}-` + "k".repeat(300), ...manyAttrs };
  await edgeRead.read(ec, i);
  edges++;
}
await edgeWrite.write({ targetingKey: "user-w", country: "US", plan: "free" }, 1).catch(() => {});
edges++;
await edgeRead.wait({ timeoutMs: 30_000 });
await edgeWrite.wait({ timeoutMs: 30_000 });
await pub.close({ timeoutMs: 60_000 });
await nc.close();
console.log(JSON.stringify({ want, edges, edgeReader: edgeRead.stats(), reader: getOrder.stats(), writer: placeOrder.stats(), publisher: pub.stats() }));
