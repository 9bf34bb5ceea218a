// node-orders: a small Node.js HTTP service moving its orders from one
// PostgreSQL database (the old schema: `orders`, totals in numeric dollars)
// to another (the new schema: `customer_orders`, integer cents, upper-case
// states) with Parity's Node client. Reads and writes are wrapped in a
// Reader and a Writer, the stage per user comes from OpenFeature, and every
// compared call is published to JetStream for Parity's dashboard.
//
// Usage: node server.mjs [--traffic 50] [--addr 127.0.0.1:8082]
//   NATS_URL      default nats://127.0.0.1:4223 (the collector's embedded NATS)
//   DATABASE_URL  default postgres://postgres@127.0.0.1:5432/postgres (creates the two databases)
//   OLD_DATABASE_URL, NEW_DATABASE_URL  use these databases instead
//   SEED_BUGS     default true: order 4 rounded differently and order 5 not copied in the new database

import http from "node:http";
import { parseArgs } from "node:util";
import pg from "pg";
import { connect } from "@nats-io/transport-node";
import { InMemoryProvider, OpenFeature } from "@openfeature/server-sdk";
import { Publisher, Reader, Writer, WriteFrozenError } from "@parityhq/parity";

const { values: args } = parseArgs({
  options: {
    traffic: { type: "string", default: "50" },
    addr: { type: "string", default: "127.0.0.1:8082" },
    reset: { type: "boolean", default: false },
  },
});
const natsURL = process.env.NATS_URL ?? "nats://127.0.0.1:4223";
const adminURL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const seedBugs = (process.env.SEED_BUGS ?? "true") !== "false";
const log = (...a) => console.log("node-orders:", ...a);

// ---- the two databases ---------------------------------------------------

function dbURL(name) {
  const u = new URL(adminURL);
  u.pathname = "/" + name;
  return u.toString();
}

/** ensureDatabase creates the database url names, on its server, unless it exists. */
async function ensureDatabase(url) {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  u.pathname = "/postgres";
  const admin = new pg.Client({ connectionString: u.toString() });
  await admin.connect();
  try {
    const r = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (r.rowCount === 0) await admin.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
}

// OLD_DATABASE_URL and NEW_DATABASE_URL name other databases (the
// end-to-end test gives it fresh ones).
const oldURL = process.env.OLD_DATABASE_URL || dbURL("parity_node_orders_old");
const newURL = process.env.NEW_DATABASE_URL || dbURL("parity_node_orders_new");
await ensureDatabase(oldURL);
await ensureDatabase(newURL);
const oldDB = new pg.Pool({ connectionString: oldURL, max: 8 });
const newDB = new pg.Pool({ connectionString: newURL, max: 8 });

if (args.reset) {
  await oldDB.query("DROP TABLE IF EXISTS orders");
  await newDB.query("DROP TABLE IF EXISTS customer_orders");
}
await oldDB.query(`
CREATE TABLE IF NOT EXISTS orders (
  id bigint PRIMARY KEY, customer_id bigint NOT NULL, total numeric(12,2) NOT NULL, status text NOT NULL
);
INSERT INTO orders (id, customer_id, total, status) VALUES
  (1, 123, 19.99, 'paid'), (2, 456, 5.00, 'pending'), (3, 789, 120.50, 'shipped'), (4, 789, 10.01, 'paid'),
  (5, 321, 42.00, 'pending'), (6, 456, 7.50, 'pending'), (7, 123, 64.00, 'paid'), (8, 321, 0.99, 'pending')
ON CONFLICT (id) DO NOTHING;`);
// The seeded divergence: the backfill rounded order 4 differently and has not reached order 5.
await newDB.query(`
CREATE TABLE IF NOT EXISTS customer_orders (
  order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, total_cents bigint NOT NULL,
  state text NOT NULL CHECK (state IN ('PENDING', 'PAID', 'SHIPPED', 'CANCELLED'))
);
INSERT INTO customer_orders (order_id, customer_id, total_cents, state) VALUES
  (1, 123, 1999, 'PAID'), (2, 456, 500, 'PENDING'), (3, 789, 12050, 'SHIPPED'),
  (6, 456, 750, 'PENDING'), (7, 123, 6400, 'PAID'), (8, 321, 99, 'PENDING'),
  ${seedBugs ? "(4, 789, 1000, 'PAID')" : "(4, 789, 1001, 'PAID'), (5, 321, 4200, 'PENDING')"}
ON CONFLICT (order_id) DO NOTHING;`);

class NotFound extends Error {}

// The two implementations of each call. Both honour the AbortSignal Parity
// gives the non-authoritative side (node-postgres has no cancel by signal,
// so they stop waiting for the answer).
const withSignal = (p, signal) =>
  signal ? Promise.race([p, new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }))]) : p;

const oldStore = {
  async order(id, { signal }) {
    const r = await withSignal(oldDB.query("SELECT customer_id, (total * 100)::bigint AS cents, status FROM orders WHERE id = $1", [id]), signal);
    if (r.rowCount === 0) throw new NotFound(`order ${id}: not found`);
    const row = r.rows[0];
    return { id, customer_id: Number(row.customer_id), total_cents: Number(row.cents), status: row.status };
  },
  async setStatus({ id, status }, { signal }) {
    const r = await withSignal(oldDB.query("UPDATE orders SET status = $2 WHERE id = $1", [id, status]), signal);
    return { rows_affected: r.rowCount };
  },
};
const newStore = {
  async order(id, { signal }) {
    const r = await withSignal(newDB.query("SELECT customer_id, total_cents, lower(state) AS status FROM customer_orders WHERE order_id = $1", [id]), signal);
    if (r.rowCount === 0) throw new NotFound(`order ${id}: not found`);
    const row = r.rows[0];
    return { id, customer_id: Number(row.customer_id), total_cents: Number(row.total_cents), status: row.status };
  },
  async setStatus({ id, status }, { signal }) {
    const r = await withSignal(newDB.query("UPDATE customer_orders SET state = upper($2) WHERE order_id = $1", [id, status]), signal);
    return { rows_affected: r.rowCount };
  },
};

// ---- the stage per user, from OpenFeature --------------------------------
// The original rollout: the testing group (users 123 and 456) reads from the
// new database, users in IN or the US or on the pro plan shadow it, and
// everyone's writes go to both. Any OpenFeature provider works here: the
// vendor's, flagd, or OFREP pointed at Parity's collector.

await OpenFeature.setProviderAndWait(
  new InMemoryProvider({
    "orders-migration": {
      disabled: false,
      defaultVariant: "dualwrite",
      variants: { dualwrite: "dualwrite", shadow: "shadow", live: "live", freeze: "freeze" },
      contextEvaluator: (ctx) => {
        if (ctx.targetingKey === "123" || ctx.targetingKey === "456") return "live";
        if (ctx.country === "IN" || ctx.country === "US" || ctx.plan === "pro") return "shadow";
        return "dualwrite";
      },
    },
  }),
);
const flags = OpenFeature.getClient();

// ---- Parity ----------------------------------------------------------------

const nc = await connect({ servers: natsURL, name: "node-orders", maxReconnectAttempts: -1 });
// The publisher packs the pairs waiting for each operation into one message
// (wire-format version 2: up to 64 pairs or 256 KiB, sent within 5 ms), the
// default; { batchPairs: 1 } sends one pair per message, for verifiers older
// than batches.
const pub = new Publisher(nc, { onError: (e) => log(e.message) });
const common = { experiment: "orders-node", flags, flagKey: "orders-migration", publisher: pub, timeoutMs: 500 };
const getOrder = new Reader({ ...common, operation: "get-order", old: oldStore.order, new: newStore.order });
const setStatus = new Writer({ ...common, operation: "set-status", old: oldStore.setStatus, new: newStore.setStatus });

// ---- HTTP ------------------------------------------------------------------

function userOf(req) {
  const ctx = { targetingKey: String(req.headers["x-user-id"] ?? "") };
  if (req.headers["x-country"]) ctx.country = String(req.headers["x-country"]);
  if (req.headers["x-plan"]) ctx.plan = String(req.headers["x-plan"]);
  return ctx;
}

function send(res, code, body) {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function handle(req, res) {
  const m = /^\/orders\/(\d{1,9})(\/status)?$/.exec(new URL(req.url, "http://x").pathname);
  if (!m) return send(res, 404, { error: "not found" });
  const id = Number(m[1]);
  try {
    if (req.method === "GET" && !m[2]) {
      return send(res, 200, await getOrder.read(userOf(req), id));
    }
    if (req.method === "POST" && m[2]) {
      let raw = "";
      for await (const chunk of req) {
        raw += chunk;
        if (raw.length > 1024) return send(res, 413, { error: "body too large" });
      }
      const status = JSON.parse(raw || "{}").status;
      if (!["pending", "paid", "shipped", "cancelled"].includes(status)) return send(res, 400, { error: "status must be pending, paid, shipped or cancelled" });
      return send(res, 200, await setStatus.write(userOf(req), { id, status }));
    }
    return send(res, 405, { error: "method not allowed" });
  } catch (e) {
    if (e instanceof NotFound) return send(res, 404, { error: e.message });
    if (e instanceof WriteFrozenError) return send(res, 503, { error: "writes are frozen during a bulk copy" });
    if (e instanceof SyntaxError) return send(res, 400, { error: "body must be JSON" });
    log("request failed:", e.message);
    return send(res, 500, { error: "internal error" });
  }
}

const [host, port] = args.addr.split(":");
const server = http.createServer((req, res) => void handle(req, res));
await new Promise((r) => server.listen(Number(port), host, r));
log(`serving on http://${args.addr}; pairs to ${natsURL}; experiment orders-node on Parity's dashboard`);

// ---- traffic ---------------------------------------------------------------
// 500 users; each keeps one country and plan, so its stage never changes.
// Reads go to orders 1 to 5, status changes to orders 6 to 8.

const countries = ["IN", "US", "DE", "BR"];
const rate = Number(args.traffic);
let trafficTimer;
if (rate > 0) {
  let sent = 0;
  trafficTimer = setInterval(() => {
    for (let i = 0; i < Math.max(1, Math.round(rate / 10)); i++) {
      const u = 1 + Math.floor(Math.random() * 500);
      const headers = { "x-user-id": String(u), "x-country": countries[u % 4], "x-plan": u % 3 === 0 ? "pro" : "free" };
      const write = Math.random() < 0.2;
      const path = write ? `/orders/${6 + (u % 3)}/status` : `/orders/${1 + (sent % 5)}`;
      const body = write ? JSON.stringify({ status: ["pending", "paid", "shipped"][sent % 3] }) : undefined;
      sent++;
      const r = http.request({ host, port: Number(port), path, method: write ? "POST" : "GET", headers }, (res) => res.resume());
      r.on("error", () => {});
      r.end(body);
    }
  }, 100);
}
const statsTimer = setInterval(() => {
  const r = getOrder.stats();
  const w = setStatus.stats();
  const p = pub.stats();
  log(`reads ${r.calls} (pairs ${r.published}), writes ${w.calls} (pairs ${w.published}); published ${p.published}, dropped ${p.dropped}, failed ${p.failed}`);
}, 10_000);

async function shutdown() {
  clearInterval(trafficTimer);
  clearInterval(statsTimer);
  server.close();
  await getOrder.wait({ timeoutMs: 2000 }).catch(() => {});
  await setStatus.wait({ timeoutMs: 2000 }).catch(() => {});
  await pub.close({ timeoutMs: 5000 }).catch((e) => log(e.message));
  await nc.close();
  await oldDB.end();
  await newDB.end();
  process.exit(0);
}
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
