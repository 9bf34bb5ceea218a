// The publisher: a bounded queue that publish() offers pairs to and returns
// at once, drained in the background by the event loop in small slices, each
// pair encoded and published to JetStream asynchronously with its id as the
// Nats-Msg-Id, so JetStream stores a pair published twice once.
//
// Like Go's pkg/publish, it publishes each pair with a reply subject under
// one inbox of its own and reads JetStream's PubAck there, instead of calling
// JetStreamClient.publish: that allocates a request, two errors and a timer
// per message and measured a quarter of the throughput on the same machine.
// Acks not received within ackTimeoutMs are failed by one sweep timer; a
// pair refused for want of a stream is sent again until then.

import { hostname } from "node:os";
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { JetStreamApiError, JetStreamError, PubHeaders } from "@nats-io/jetstream";
import { encodePair, errorText, FieldError, subject, type Pair } from "./envelope.js";

/** InvalidOptionError is thrown by constructors for an option out of range; the message names it. */
export class InvalidOptionError extends Error {
  override readonly name = "InvalidOptionError";
}

/** Defaults of PublisherOptions. */
export const DEFAULT_QUEUE_SIZE = 8192;
export const DEFAULT_MAX_PENDING = 4000;
export const DEFAULT_ACK_TIMEOUT_MS = 5000;
export const DEFAULT_REPORT_INTERVAL_MS = 10_000;
/** Where publishers report their counters (core NATS), as Go's publish.ReportSubject. */
export const REPORT_SUBJECT = "parity.hooks.stats";

export interface PublisherOptions {
  /** Pairs that may wait to be encoded and published; publish() drops beyond. Default 8192. */
  queueSize?: number;
  /** Published pairs that may await a JetStream ack at once. Default 4000. */
  maxPending?: number;
  /** How long a pair may await its ack before it counts as failed, in ms. Default 5000. */
  ackTimeoutMs?: number;
  /** Names this publisher in its reports. Default: host name and process id. */
  instance?: string;
  /** How often counters are reported on REPORT_SUBJECT, in ms; negative: never. 0 or unset: 10000. */
  reportIntervalMs?: number;
  /**
   * Receives publishing errors (invalid pairs, refused or unacknowledged
   * publishes). Called from the background, never from publish(); texts name
   * fields and subjects, never values. An onError that throws is ignored.
   */
  onError?: (err: Error) => void;
}

/**
 * Counters of a Publisher. In every snapshot
 * offered == enqueued + dropped and enqueued == published + failed + pending.
 */
export interface PublisherStats {
  offered: number;
  enqueued: number;
  dropped: number;
  published: number;
  failed: number;
  pending: number;
  /** Pairs waiting in the queue now (part of pending). */
  queued: number;
}

/** The interface Reader and Writer need: publish must not block and says whether it took the pair. */
export interface PairPublisher {
  publish(pair: Pair): boolean;
}

/** ClosedError is reported for pairs still queued or awaiting an ack when the publisher stopped. */
export class ClosedError extends Error {
  override readonly name = "ClosedError";
}

/** DeadlineError is what flush() and close() reject with when their deadline passes first. */
export class DeadlineError extends Error {
  override readonly name = "DeadlineError";
}

export interface DeadlineOptions {
  /** Give up after this many ms. Default 5000. */
  timeoutMs?: number;
  /** Give up when this signal aborts. */
  signal?: AbortSignal;
}

function checkInt(name: string, v: number | undefined, def: number, min: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new InvalidOptionError(`parity: invalid option: ${name}: must be an integer >= ${min}, got ${String(v)}`);
  }
  return v === 0 && min === 0 ? def : v;
}

/**
 * A pair awaiting its ack. Its data is kept for a retry: while a clustered
 * stream elects a leader the server answers "no responders", and the pair is
 * sent again (same Nats-Msg-Id, so never stored twice) until its ack timeout.
 */
interface Flight {
  subject: string;
  id: string;
  data: string;
  expires: number;
  retries: number;
}

/** Retries of a pair refused for want of a stream: 50 ms doubling to 1 s, at most 20, never past the ack timeout. */
const RETRY_BASE_MS = 50;
const MAX_RETRIES = 20;
const NO_STREAM = "no JetStream stream takes the subject (no responders)";

interface Waiter {
  upTo: number;
  left: number;
  resolve: () => void;
}

/**
 * One background slice sends at most SLICE_PAIRS pairs and runs at most about
 * SLICE_MS before it yields the event loop.
 */
export const SLICE_PAIRS = 256;
const SLICE_MS = 2;

/**
 * Publisher publishes pairs to JetStream in the background. publish() never
 * blocks, never throws and does O(1) work: a full queue, a closed publisher
 * or a missing pair is a counted drop.
 */
export class Publisher implements PairPublisher {
  readonly #nc: NatsConnection | undefined;
  readonly #inbox: string = "";
  readonly #sub: Subscription | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #queueSize: number;
  readonly #maxPending: number;
  readonly #ackTimeoutMs: number;
  readonly #instance: string;
  readonly #onError: ((err: Error) => void) | undefined;

  // The queue: a ring of #queueSize slots.
  readonly #ring: (Pair | undefined)[];
  #head = 0;
  #len = 0;

  #enqueued = 0;
  #dropped = 0;
  #published = 0;
  #failed = 0;

  #seq = 0; // sequence of the last pair enqueued
  #headSeq = 1; // sequence of the pair at the head of the queue
  /** Pairs awaiting an ack, by sequence: their subject and when they expire. */
  readonly #inflight = new Map<number, Flight>();
  #waiters: Waiter[] = [];
  #scheduled = false;
  #closed = false;
  #stopped = false;
  readonly #reportTimer: NodeJS.Timeout | undefined;

  /**
   * new Publisher(nc, options) publishes on nc (the caller keeps owning
   * it). It does not create the stream; the verifiers and the collector do.
   * Options out of range throw an InvalidOptionError. With nc undefined the
   * publisher is a discarding one: every pair is a counted drop.
   */
  constructor(nc: NatsConnection | undefined, opts: PublisherOptions = {}) {
    if (opts === null || typeof opts !== "object") throw new InvalidOptionError("parity: invalid option: options must be an object");
    this.#queueSize = checkInt("queueSize", opts.queueSize, DEFAULT_QUEUE_SIZE, 0);
    this.#maxPending = checkInt("maxPending", opts.maxPending, DEFAULT_MAX_PENDING, 0);
    this.#ackTimeoutMs = checkInt("ackTimeoutMs", opts.ackTimeoutMs, DEFAULT_ACK_TIMEOUT_MS, 0);
    const report = opts.reportIntervalMs || DEFAULT_REPORT_INTERVAL_MS; // 0: the default
    if (typeof report !== "number" || !Number.isFinite(report)) throw new InvalidOptionError(`parity: invalid option: reportIntervalMs: must be a number, got ${String(report)}`);
    if (opts.onError !== undefined && typeof opts.onError !== "function") throw new InvalidOptionError("parity: invalid option: onError: must be a function");
    this.#instance = opts.instance || `${hostname()}-${process.pid}`;
    this.#onError = opts.onError;
    this.#ring = new Array(this.#queueSize);
    this.#nc = nc;
    if (nc === undefined) {
      this.#closed = true;
      this.#stopped = true;
      return;
    }
    this.#inbox = createInbox() + ".";
    this.#sub = nc.subscribe(this.#inbox + "*", { callback: (err, m) => this.#onAck(err, m) });
    if (report > 0) {
      this.#reportTimer = setInterval(() => this.#sendReport(), report);
      this.#reportTimer.unref();
    }
  }

  /** Publisher.discard() is a publisher connected to nothing: every pair is dropped and counted. */
  static discard(): Publisher {
    return new Publisher(undefined, { reportIntervalMs: -1 });
  }

  /**
   * publish offers pair and returns at once whether it was queued. It takes
   * ownership of pair (fills its id, time and version). It never throws.
   */
  publish(pair: Pair): boolean {
    if (this.#closed || pair === null || typeof pair !== "object" || this.#len >= this.#queueSize) {
      this.#dropped++;
      return false;
    }
    this.#ring[(this.#head + this.#len) % this.#queueSize] = pair;
    this.#len++;
    this.#enqueued++;
    this.#seq++;
    this.#schedule();
    return true;
  }

  /** stats returns the counters. */
  stats(): PublisherStats {
    return {
      offered: this.#enqueued + this.#dropped,
      enqueued: this.#enqueued,
      dropped: this.#dropped,
      published: this.#published,
      failed: this.#failed,
      pending: this.#enqueued - this.#published - this.#failed,
      queued: this.#len,
    };
  }

  /**
   * flush resolves once every pair enqueued before the call has been
   * acknowledged or has failed; it rejects with a DeadlineError when the
   * deadline passes first.
   */
  flush(opts: DeadlineOptions = {}): Promise<void> {
    const pending = this.#len + this.#inflight.size;
    if (pending === 0) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      this.#waiters.push({ upTo: this.#seq, left: pending, resolve });
    });
    this.#schedule();
    return withDeadline(done, opts, "parity: flush");
  }

  /**
   * close makes publish() drop every further pair, flushes, and stops. If the
   * deadline passes first, the pairs still queued or awaiting an ack are
   * counted as failed and close rejects with a DeadlineError. Either way,
   * once it settles pending is zero. It does not close the NATS connection.
   */
  async close(opts: DeadlineOptions = {}): Promise<void> {
    this.#closed = true;
    try {
      await this.flush(opts);
    } finally {
      this.#stop();
    }
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#reportTimer !== undefined) clearInterval(this.#reportTimer);
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    try {
      this.#sub?.unsubscribe();
    } catch {
      // the connection is closed: the subscription is gone anyway
    }
    const n = this.#len + this.#inflight.size;
    this.#failed += n;
    this.#ring.fill(undefined);
    this.#len = 0;
    this.#inflight.clear();
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    if (n > 0) this.#report(new ClosedError(`parity: publisher closed: ${n} pairs queued or awaiting an ack counted as failed`));
    this.#sendReport();
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => this.#drain());
  }

  /** drain sends queued pairs for at most SLICE_MS, then yields the event loop. */
  #drain(): void {
    this.#scheduled = false;
    if (this.#stopped) return;
    const until = performance.now() + SLICE_MS;
    let n = 0;
    while (this.#len > 0 && this.#inflight.size < this.#maxPending) {
      const pair = this.#ring[this.#head] as Pair;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#queueSize;
      this.#len--;
      const seq = this.#headSeq++;
      this.#send(pair, seq);
      if (++n >= SLICE_PAIRS || performance.now() >= until) break;
    }
    if (this.#len > 0 && this.#inflight.size < this.#maxPending) this.#schedule();
  }

  #send(pair: Pair, seq: number): void {
    let data: string;
    try {
      data = encodePair(pair);
    } catch (e) {
      this.#complete(seq, false);
      const msg = e instanceof FieldError ? `parity: invalid pair: field ${e.field}: ${e.problem}` : `parity: invalid pair: ${errorText(e)}`;
      this.#report(new Error(msg));
      return;
    }
    const f: Flight = { subject: subject(pair.experiment, pair.operation), id: pair.id as string, data, expires: performance.now() + this.#ackTimeoutMs, retries: 0 };
    this.#inflight.set(seq, f);
    this.#armSweep();
    this.#transmit(seq, f);
  }

  #transmit(seq: number, f: Flight): void {
    try {
      const h = headers();
      h.set(PubHeaders.MsgIdHdr, f.id);
      (this.#nc as NatsConnection).publish(f.subject, f.data, { reply: this.#inbox + seq.toString(36), headers: h });
    } catch (e) {
      this.#settle(seq, errorText(e));
    }
  }

  /** onAck handles JetStream's reply to one publish. */
  #onAck(err: Error | null, m: Msg): void {
    if (err !== null) return; // the subscription ended (close)
    const seq = parseInt(m.subject.slice(this.#inbox.length), 36);
    const problem = ackProblem(m);
    const f = this.#inflight.get(seq);
    if (problem === NO_STREAM && f !== undefined && f.retries < MAX_RETRIES) {
      f.retries++;
      const t = setTimeout(() => {
        if (!this.#stopped && this.#inflight.get(seq) === f) this.#transmit(seq, f);
      }, Math.min(RETRY_BASE_MS * 2 ** (f.retries - 1), 1000));
      t.unref();
      return;
    }
    this.#settle(seq, problem);
  }

  /** armSweep makes sure one timer fails the pairs whose ack is overdue. */
  #armSweep(): void {
    if (this.#sweepTimer !== undefined || this.#stopped) return;
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = undefined;
      const now = performance.now();
      for (const [seq, f] of this.#inflight) {
        if (f.expires > now) break; // in order of expiry
        this.#settle(seq, f.retries > 0 ? NO_STREAM : `no ack from JetStream within ${this.#ackTimeoutMs} ms`);
      }
      if (this.#inflight.size > 0) this.#armSweep();
    }, Math.max(10, Math.min(this.#ackTimeoutMs, 250)));
    this.#sweepTimer.unref();
  }

  /** settle counts the outcome of pair seq once: problem undefined is published. */
  #settle(seq: number, problem: string | undefined): void {
    const f = this.#inflight.get(seq);
    if (f === undefined) return; // already counted (timed out, or by close)
    this.#inflight.delete(seq);
    this.#complete(seq, problem === undefined);
    if (problem !== undefined) this.#report(new Error(`parity: publish ${f.subject}: ${problem}`));
    if (this.#len > 0) this.#schedule();
  }

  #complete(seq: number, ok: boolean): void {
    if (ok) this.#published++;
    else this.#failed++;
    if (this.#waiters.length === 0) return;
    const kept: Waiter[] = [];
    for (const w of this.#waiters) {
      if (seq <= w.upTo) w.left--;
      if (w.left <= 0) w.resolve();
      else kept.push(w);
    }
    this.#waiters = kept;
  }

  #report(err: Error): void {
    if (this.#onError === undefined) return;
    try {
      this.#onError(err);
    } catch {
      // an onError that throws must not stop the publisher
    }
  }

  #sendReport(): void {
    if (this.#nc === undefined || this.#nc.isClosed()) return;
    try {
      const report = { instance: this.#instance, time: new Date().toISOString(), ...this.stats() };
      this.#nc.publish(REPORT_SUBJECT, JSON.stringify(report));
    } catch {
      // reports are best effort
    }
  }
}

/**
 * ackProblem returns undefined when m acknowledges a stored pair (or a
 * duplicate of one), and otherwise why the pair was not stored.
 */
function ackProblem(m: Msg): string | undefined {
  if (m.data.length === 0) {
    return m.headers?.code === 503 ? NO_STREAM : "empty reply from JetStream";
  }
  try {
    const ack = m.json<{ stream?: string; error?: { code: number; err_code?: number; description: string } }>();
    if (ack.error !== undefined) return new JetStreamApiError(ack.error as any).message;
    if (!ack.stream) return new JetStreamError("invalid ack response").message;
    return undefined;
  } catch {
    return new JetStreamError("invalid ack response").message;
  }
}

/** withDeadline settles like p, or rejects with a DeadlineError at the deadline. */
export function withDeadline<T>(p: Promise<T>, opts: DeadlineOptions, what: string): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise<T>((resolve, reject) => {
    const fail = (why: string): void => {
      cleanup();
      reject(new DeadlineError(`${what}: ${why}`));
    };
    const timer = setTimeout(() => fail(`deadline of ${timeoutMs} ms passed`), timeoutMs);
    const onAbort = (): void => fail("aborted");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    };
    if (opts.signal?.aborted) return fail("aborted");
    p.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e: unknown) => {
        cleanup();
        reject(e);
      },
    );
  });
}
