// ofrep-pairs is run by e2e/node_test.go: the stage comes from Parity's own
// collector over OFREP (OpenFeature's OFREP provider, PARITY_URL and
// PARITY_TOKEN), and the reads' pairs go to NATS_URL. It prints the stage
// each user got, and the reader's and the publisher's counters.

import { connect } from "@nats-io/transport-node";
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { Publisher, Reader } from "../src/index.js";

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`ofrep-pairs: ${k} is not set`);
  return v;
};

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: env("PARITY_URL"), headers: [["Authorization", `Bearer ${env("PARITY_TOKEN")}`]] }));
const nc = await connect({ servers: env("NATS_URL") });
const pub = new Publisher(nc);
const getOrder = new Reader<number, { id: number; total_cents: number; from?: string }>({
  experiment: env("EXPERIMENT"),
  operation: "get-order",
  flags: OpenFeature.getClient(),
  flagKey: env("FLAG"),
  publisher: pub,
  old: async (id) => ({ id, total_cents: 1001 }),
  new: async (id) => ({ id, total_cents: 1001 }),
});
const stages: Record<string, string> = {};
for (const user of (process.env.USERS ?? "123,456,7,8").split(",")) {
  const ec = { targetingKey: user, country: "IN", plan: "pro" };
  stages[user] = (await OpenFeature.getClient().getStringDetails(env("FLAG"), "off", ec)).value;
  await getOrder.read(ec, Number(user));
}
await getOrder.wait({ timeoutMs: 10_000 });
await pub.close({ timeoutMs: 30_000 });
await nc.close();
await OpenFeature.close();
console.log(JSON.stringify({ stages, reader: getOrder.stats(), publisher: pub.stats() }));
