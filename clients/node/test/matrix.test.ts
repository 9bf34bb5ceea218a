// The stage × operation × failure-side matrix, as Go's TestMatrix: every
// stage, read and write, each side succeeding, rejecting or throwing, through
// the real OpenFeature SDK (in-memory provider), the real publisher and a real
// nats-server with JetStream; checks what the caller got, which paths ran in
// which order, the pair on the stream, and the counters.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { Publisher, Reader, Writer, WriteFrozenError, STAGES, type Stage, type Kind } from "../src/index.js";
import { NATSServer, connectTo, createStream, readPairs, newFlags, FLAG_KEY, STAGE_ATTR } from "./helpers.js";

type Behaviour = "succeeds" | "rejects" | "throws";
interface Rec {
  path: string;
  id: number;
}

const failureCases: { name: string; old: Behaviour; new: Behaviour }[] = [
  { name: "none", old: "succeeds", new: "succeeds" },
  { name: "old rejects", old: "rejects", new: "succeeds" },
  { name: "new rejects", old: "succeeds", new: "rejects" },
  { name: "both reject", old: "rejects", new: "rejects" },
  { name: "old throws", old: "throws", new: "succeeds" },
  { name: "new throws", old: "succeeds", new: "throws" },
];

/** The DESIGN table for reads: who serves, and whether the other path runs. */
function readPlan(s: Stage): [string, boolean] {
  switch (s) {
    case "shadow":
      return ["old", true];
    case "live":
      return ["new", true];
    case "rampdown":
    case "complete":
      return ["new", false];
  }
  return ["old", false];
}

/** The DESIGN table for writes: the order of the paths, the first authoritative; [] is refused. */
function writePlan(s: Stage): string[] {
  switch (s) {
    case "off":
      return ["old"];
    case "dualwrite":
    case "shadow":
      return ["old", "new"];
    case "live":
    case "rampdown":
      return ["new", "old"];
    case "complete":
      return ["new"];
  }
  return [];
}

let server: NATSServer;
let nc: NatsConnection;
let pub: Publisher;

before(async () => {
  server = await NATSServer.start();
  nc = await connectTo(server.url);
  await createStream(nc);
  pub = new Publisher(nc, { reportIntervalMs: -1 });
});

after(async () => {
  await pub.close({ timeoutMs: 10_000 });
  await nc.close();
  await server.stop();
});

test("matrix: stage × read/write × failure side", async (t) => {
  const flags = await newFlags();
  const experiment = "matrix";
  let n = 0;
  for (const kind of ["read", "write"] as Kind[]) {
    for (const stage of STAGES) {
      for (const fc of failureCases) {
        const id = ++n;
        const operation = `${kind}-${stage}-${id}`;
        await t.test(`${kind}/${stage}/${fc.name}`, async () => {
          const calls: string[] = [];
          const errs: Record<string, Error> = { old: new Error("old: no such row"), new: new Error("new: no such row") };
          const thrown: Record<string, Error> = { old: new Error("old exploded"), new: new Error("new exploded") };
          const behaviour: Record<string, Behaviour> = { old: fc.old, new: fc.new };
          const fn =
            (name: string) =>
            (req: number): Promise<Rec> => {
              calls.push(name);
              switch (behaviour[name]) {
                case "rejects":
                  return Promise.reject(errs[name]);
                case "throws":
                  throw thrown[name]; // synchronously: Go's panic
              }
              return Promise.resolve({ path: name, id: req });
            };
          const cfg = {
            experiment,
            operation,
            flags,
            flagKey: FLAG_KEY,
            publisher: pub,
            old: fn("old"),
            new: fn("new"),
            compare: (a: Rec, b: Rec) => a.id === b.id,
          };
          const ec = { targetingKey: `user-${id}`, country: "IN", [STAGE_ATTR]: stage };

          const obs = (name: string, b: Behaviour): any => {
            switch (b) {
              case "rejects":
                return { status: "error", error: `${name}: no such row` };
              case "throws":
                return { status: "panic", error: `panic: ${name} exploded` };
            }
            return { status: "ok", value: { path: name, id } };
          };
          let wantPair: any = undefined;
          let wantCalls: string[] = [];
          let wantOutcome: { value?: Rec; reason?: unknown } = {};
          let panics = 0;
          const outcome = (name: string): void => {
            const b = behaviour[name];
            wantOutcome = b === "succeeds" ? { value: { path: name, id } } : { reason: b === "rejects" ? errs[name] : thrown[name] };
          };
          const pairBase = () => ({
            version: 1,
            experiment,
            operation,
            kind,
            stage,
            user: { key: `user-${id}`, attrs: { country: "IN", [STAGE_ATTR]: stage } },
            flag: { key: FLAG_KEY, variant: stage, reason: "TARGETING_MATCH" },
          });

          let m: Reader<number, Rec> | Writer<number, Rec>;
          let call: () => Promise<Rec>;
          if (kind === "read") {
            const r = new Reader(cfg);
            m = r;
            call = () => r.read(ec, id);
            const [auth, compared] = readPlan(stage);
            outcome(auth);
            wantCalls = [auth];
            if (compared) {
              wantCalls = ["new", "old"]; // concurrently: compared as a set
              wantPair = { ...pairBase(), control: obs("old", fc.old), candidate: obs("new", fc.new) };
              panics = (fc.old === "throws" ? 1 : 0) + (fc.new === "throws" ? 1 : 0);
            }
          } else {
            const w = new Writer(cfg);
            m = w;
            call = () => w.write(ec, id);
            const order = writePlan(stage);
            if (order.length === 0) {
              wantOutcome = {};
            } else if (order.length === 1) {
              outcome(order[0] as string);
              wantCalls = order;
            } else {
              const [first, second] = order as [string, string];
              outcome(first);
              const sides: Record<string, any> = { [first]: obs(first, behaviour[first] as Behaviour) };
              if (behaviour[first] === "throws") panics++;
              if (behaviour[first] === "succeeds") {
                wantCalls = order;
                sides[second] = obs(second, behaviour[second] as Behaviour);
                if (behaviour[second] === "throws") panics++;
              } else {
                wantCalls = [first];
                sides[second] = { status: "skipped", error: "migration: not attempted because the authoritative write failed" };
              }
              wantPair = { ...pairBase(), control: sides.old, candidate: sides.new };
            }
          }
          if (wantPair && wantPair.control.status === "ok" && wantPair.candidate.status === "ok") wantPair.client_verdict = "match";

          // What the caller got: exactly the authoritative outcome.
          const settled = await call().then(
            (value) => ({ value, reason: undefined as unknown }),
            (reason: unknown) => ({ value: undefined, reason }),
          );
          if (kind === "write" && stage === "freeze") {
            assert.ok(settled.reason instanceof WriteFrozenError, `want WriteFrozenError, got ${String(settled.reason)}`);
            assert.match((settled.reason as Error).message, /writes are frozen \(experiment matrix, operation write-freeze-/);
          } else if ("reason" in wantOutcome) {
            assert.equal(settled.reason, wantOutcome.reason, "the caller must get the very error the authoritative path failed with");
          } else {
            assert.equal(settled.reason, undefined);
            assert.deepEqual(settled.value, wantOutcome.value);
          }

          // What landed on the stream.
          await m.wait({ timeoutMs: 10_000 });
          await pub.flush({ timeoutMs: 10_000 });
          const pairs = await readPairs(nc, `parity.pairs.${experiment}.${operation}`);
          if (wantPair === undefined) {
            assert.equal(pairs.length, 0, `pairs published in stage ${stage}, want none`);
          } else {
            assert.equal(pairs.length, 1);
            const p = pairs[0];
            assert.match(p.id, /^[0-9a-f]{32}$/);
            assert.equal(p.msgID, p.id, "Nats-Msg-Id must be the pair id");
            assert.ok(Math.abs(Date.parse(p.time) - Date.now()) < 60_000, `time ${p.time}`);
            for (const side of ["control", "candidate"]) {
              assert.ok(Number.isInteger(p[side].duration_ns) && p[side].duration_ns >= 0, `${side}.duration_ns ${p[side].duration_ns}`);
              if (p[side].status === "skipped") assert.equal(p[side].duration_ns, 0);
              delete p[side].duration_ns;
            }
            delete p.id;
            delete p.time;
            delete p.msgID;
            assert.deepEqual(p, wantPair);
          }

          // Which paths ran, in which order.
          if (kind === "read") {
            calls.sort();
            wantCalls = [...wantCalls].sort();
          }
          assert.deepEqual(calls, wantCalls);

          // The counters.
          const want = {
            experiment,
            operation,
            kind,
            calls: 1,
            offered: wantPair ? 1 : 0,
            published: wantPair ? 1 : 0,
            dropped: 0,
            sampledOut: 0,
            pending: 0,
            flagErrors: 0,
            panics,
            timeouts: 0,
            marshalErrors: 0,
            frozen: kind === "write" && stage === "freeze" ? 1 : 0,
            inFlight: 0,
          };
          assert.deepEqual(m.stats(), want);
        });
      }
    }
  }
  const s = pub.stats();
  assert.equal(s.offered, s.enqueued + s.dropped);
  assert.equal(s.failed, 0);
  assert.equal(s.published, s.enqueued);
});
