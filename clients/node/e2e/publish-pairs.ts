// publish-pairs is run by the Go end-to-end test (e2e/node_test.go): it
// publishes PAIRS calls through the Node client's Reader and Writer to the
// JetStream at NATS_URL, in four segments with known divergence, and prints
// one JSON line with what it did. The Go test checks that Parity's verifiers
// and collector count exactly that per segment.

import { connect } from "@nats-io/transport-node";
import { InMemoryProvider, OpenFeature, type EvaluationContext } from "@openfeature/server-sdk";
import { Publisher, Reader, Writer } from "../src/index.js";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const experiment = process.env.EXPERIMENT ?? "node-e2e";
const n = Number(process.env.PAIRS ?? "2000");

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
const order = (r: Req, price: number): Order => ({ id: r.i, items: [{ sku: "a", price: 100 }, { sku: "b", price }], status: "paid" });

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
const pub = new Publisher(nc, { queueSize: n + 10 });
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
  if (calls.length >= 200) await Promise.all(calls.splice(0));
}
await Promise.all(calls);
await getOrder.wait({ timeoutMs: 30_000 });
await placeOrder.wait({ timeoutMs: 30_000 });
await pub.close({ timeoutMs: 60_000 });
await nc.close();
console.log(JSON.stringify({ want, reader: getOrder.stats(), writer: placeOrder.stats(), publisher: pub.stats() }));
