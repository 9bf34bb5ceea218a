// Test helpers: a real nats-server with JetStream on a random port per test
// file, the PARITY_PAIRS stream on it, and an OpenFeature client whose
// in-memory provider serves the stage the evaluation context asks for.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, AckPolicy, RetentionPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { InMemoryProvider, OpenFeatureAPI, type Client, type EvaluationContext } from "@openfeature/server-sdk";
import { STAGES } from "../src/index.js";

export const STREAM = "PARITY_PAIRS";
export const FLAG_KEY = "orders-stage";
/** The evaluation-context attribute the test flag reads the stage from. */
export const STAGE_ATTR = "want_stage";

/** repoRoot is the repository root (the directory with go.mod). */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "go.mod"))) {
    const up = dirname(d);
    if (up === d) throw new Error("repository root (go.mod) not found");
    d = up;
  }
  return d;
}

export function readVectors(): any {
  return JSON.parse(readFileSync(join(repoRoot(), "testdata", "client-vectors.json"), "utf8"));
}

/** NATSServer is a nats-server child process with JetStream in a temporary directory. */
export class NATSServer {
  private constructor(
    readonly proc: ChildProcess,
    readonly url: string,
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** start runs nats-server on a free port (or port) and waits until it accepts clients. */
  static async start(port = -1): Promise<NATSServer> {
    const bin = process.env.NATS_SERVER_BIN ?? (existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server");
    const dir = mkdtempSync(join(tmpdir(), "parity-node-nats-"));
    const proc = spawn(bin, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: ["ignore", "ignore", "pipe"] });
    const got = await new Promise<number>((resolve, reject) => {
      let buf = "";
      const onData = (b: Buffer): void => {
        buf += b.toString();
        const m = /Listening for client connections on [^\s]*:(\d+)/.exec(buf);
        if (m && /Server is ready/.test(buf)) {
          proc.stderr?.off("data", onData);
          proc.stderr?.resume();
          resolve(Number(m[1]));
        }
      };
      proc.stderr?.on("data", onData);
      proc.once("error", reject);
      proc.once("exit", (code) => reject(new Error(`nats-server exited with ${code}: ${buf.slice(-500)}`)));
    });
    return new NATSServer(proc, `nats://127.0.0.1:${got}`, got, dir);
  }

  /** stop kills the server and waits for it to exit; keepData leaves its directory for a restart. */
  async stop(keepData = false): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGKILL");
      await exited;
    }
    if (!keepData) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** createStream makes the pair stream as the verifiers do (work queue, parity.pairs.>). */
export async function createStream(nc: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["parity.pairs.>"], retention: RetentionPolicy.Limits, duplicate_window: 120_000_000_000 });
  return jsm;
}

/**
 * readMessages returns every message stored on subject: its envelope
 * decoded (a pair, or a version-2 batch) and its Nats-Msg-Id as msgID.
 */
export async function readMessages(nc: NatsConnection, subject: string): Promise<any[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(STREAM, { subjects_filter: subject });
  const want = info.state.subjects?.[subject] ?? 0;
  if (want === 0) return [];
  const name = `read-${Math.random().toString(36).slice(2)}`;
  await jsm.consumers.add(STREAM, { name, filter_subject: subject, ack_policy: AckPolicy.None });
  const { jetstream } = await import("@nats-io/jetstream");
  const c = await jetstream(nc).consumers.get(STREAM, name);
  const out: any[] = [];
  const msgs = await c.fetch({ max_messages: want, expires: 5000 });
  for await (const m of msgs) {
    out.push({ ...m.json<any>(), msgID: m.headers?.get("Nats-Msg-Id") });
    if (out.length === want) break;
  }
  await jsm.consumers.delete(STREAM, name);
  return out;
}

/**
 * readPairs returns every pair stored on subject, decoded, the pairs of a
 * batch in order, each with its message's Nats-Msg-Id as msgID and, from a
 * batch, the batch's id as batchID.
 */
export async function readPairs(nc: NatsConnection, subject: string): Promise<any[]> {
  const out: any[] = [];
  for (const m of await readMessages(nc, subject)) {
    if (m.version === 2) for (const p of m.pairs) out.push({ ...p, msgID: m.msgID, batchID: m.id });
    else out.push(m);
  }
  return out;
}

export async function connectTo(url: string): Promise<NatsConnection> {
  return connect({ servers: url, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}

/**
 * newFlags returns a client of an isolated OpenFeature API whose in-memory
 * provider serves FLAG_KEY as the variant named by the STAGE_ATTR attribute
 * (each stage is a variant of its own name; "bogus" is the value
 * "not-a-stage"), "off" without it.
 */
export async function newFlags(): Promise<Client> {
  // OpenFeatureAPI is a singleton; domains keep tests apart.
  const api = OpenFeatureAPI.getInstance();
  const domain = `test-${Math.random().toString(36).slice(2)}`;
  const provider = new InMemoryProvider({
    [FLAG_KEY]: {
      disabled: false,
      defaultVariant: "off",
      // Every stage is a variant of the same name; "bogus" is a value that is not a stage.
      variants: { ...Object.fromEntries(STAGES.map((st) => [st, st])), bogus: "not-a-stage" },
      contextEvaluator: (ctx: EvaluationContext) => {
        const v = ctx[STAGE_ATTR];
        return typeof v === "string" ? v : "off";
      },
    },
    "bool-flag": { disabled: false, defaultVariant: "on", variants: { on: true } },
  } as any);
  await api.setProviderAndWait(domain, provider);
  return api.getClient(domain);
}

/** until polls cond every few ms until it holds, failing after a generous bound (a hang, not a speed check). */
export async function until(what: string, cond: () => boolean | Promise<boolean>, boundMs = 20_000): Promise<void> {
  const end = Date.now() + boundMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
