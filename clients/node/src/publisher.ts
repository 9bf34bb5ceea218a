// The publisher: a bounded queue that publish() offers pairs to and returns
// at once, drained in the background by the event loop in small slices. Each
// pair is encoded into the open batch of its subject, and a batch is
// published to JetStream asynchronously as one message (wire-format version
// 2; a batch of one pair is a plain version-1 envelope) when it holds
// batchPairs pairs or batchBytes bytes, when its first pair has waited
// lingerMs, or on flush — the limits and linger of Go's pkg/publish. Each
// message carries its envelope's id as the Nats-Msg-Id (the pair's id, or
// the batch's id derived from its pairs' ids), so JetStream stores a message
// published twice once; a pair id the caller gave and this publisher sent
// lately is counted as a duplicate and not sent again, since a batch cannot
// carry it as the Nats-Msg-Id.
//
// Like Go's pkg/publish, it publishes each message with a reply subject under
// one inbox of its own and reads JetStream's PubAck there, instead of calling
// JetStreamClient.publish: that allocates a request, two errors and a timer
// per message and measured a quarter of the throughput on the same machine.
// Acks not received within ackTimeoutMs are failed by one sweep timer; a
// message refused for want of a stream is sent again until then. Neither the
// sweep nor the linger timer keeps the event loop alive.

import { hostname } from "node:os";
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { JetStreamApiError, JetStreamError, PubHeaders } from "@nats-io/jetstream";
import { BatchWriter, byteLength, encodePair, errorText, FieldError, MAX_BATCH_PAIRS, MAX_SIZE, subject, type Pair } from "./envelope.js";

/** InvalidOptionError is thrown by constructors for an option out of range; the message names it. */
export class InvalidOptionError extends Error {
  override readonly name = "InvalidOptionError";
}

/** Defaults of PublisherOptions. */
export const DEFAULT_QUEUE_SIZE = 8192;
export const DEFAULT_MAX_PENDING = 4000;
export const DEFAULT_ACK_TIMEOUT_MS = 5000;
export const DEFAULT_REPORT_INTERVAL_MS = 10_000;
export const DEFAULT_BATCH_PAIRS = 64;
export const DEFAULT_BATCH_BYTES = 256 * 1024;
export const DEFAULT_LINGER_MS = 5;
/**
 * How long a publisher remembers the pair ids the caller gave that it sent,
 * at least (and at most twice as long), as Go's publish.RecentIDWindow: a
 * pair published again with the same id within it is counted as published
 * and as a duplicate, and not sent. At most MAX_RECENT_IDS ids are kept per
 * half-window; beyond that rate the window shortens. Ids the publisher
 * generates are never repeated and are not remembered.
 */
export const RECENT_ID_WINDOW_MS = 30_000;
const MAX_RECENT_IDS = 32 << 10;
/** Where publishers report their counters (core NATS), as Go's publish.ReportSubject. */
export const REPORT_SUBJECT = "parity.hooks.stats";

export interface PublisherOptions {
  /** Pairs that may wait to be encoded and published; publish() drops beyond. Default 8192. */
  queueSize?: number;
  /** Published pairs that may await a JetStream ack at once. Default 4000. */
  maxPending?: number;
  /** How long a pair may await its ack before it counts as failed, in ms. Default 5000. */
  ackTimeoutMs?: number;
  /**
   * The most pairs packed into one message: pairs waiting for the same
   * subject are sent as one batch envelope (wire-format version 2); a batch
   * of one is a plain version-1 envelope. 1 sends every pair on its own, for
   * verifiers older than version 2. 0 or unset: 64, or maxPending if that is
   * smaller; at most 1024 and at most maxPending.
   */
  batchPairs?: number;
  /** The most encoded bytes in one batch message; a single larger pair is sent on its own. 0 or unset: 262144 (256 KiB); at most 1000000. */
  batchBytes?: number;
  /**
   * The longest a pair waits for others to share its message, in ms: a batch
   * is sent as soon as it is full, once its first pair has waited this long,
   * or on flush. 0 or unset: 5.
   */
  lingerMs?: number;
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
  /** Pairs acknowledged by JetStream, duplicates included. */
  published: number;
  failed: number;
  pending: number;
  /** Pairs waiting in the queue now (part of pending). */
  queued: number;
  /**
   * Within published: pairs not sent because this publisher had sent a pair
   * with the same caller-given id within RECENT_ID_WINDOW_MS (already stored).
   */
  duplicates: number;
  /** Messages acknowledged by JetStream, each carrying one pair or a batch of them. */
  batches: number;
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
 * A message awaiting its ack: its pairs' sequences, and its data kept for a
 * retry: while a clustered stream elects a leader the server answers "no
 * responders", and the message is sent again (same Nats-Msg-Id, so never
 * stored twice) until its ack timeout.
 */
interface Flight {
  subject: string;
  id: string;
  data: string;
  seqs: number[];
  expires: number;
  retries: number;
}

/** The message being filled with the pairs of one subject. */
interface Open {
  subject: string;
  w: BatchWriter;
  seqs: number[];
  /** When its first pair was added (performance.now()). */
  since: number;
}

/** RecentIDs remembers ids in two generations, as Go's recentIDs: an id is found while its generation or the next is current. */
class RecentIDs {
  #cur = new Set<string>();
  #prev = new Set<string>();
  #since = -Infinity;

  /** seen reports whether id was added within the window, and adds it. */
  seen(id: string, now: number): boolean {
    if (this.#cur.has(id) || this.#prev.has(id)) return true;
    if (now - this.#since >= RECENT_ID_WINDOW_MS || this.#cur.size >= MAX_RECENT_IDS) {
      this.#prev = this.#cur;
      this.#cur = new Set();
      this.#since = now;
    }
    this.#cur.add(id);
    return false;
  }
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
 * Publisher publishes pairs to JetStream in the background, in batches. publish() never
 * blocks, never throws and does O(1) work: a full queue, a closed publisher
 * or a missing pair is a counted drop.
 */
export class Publisher implements PairPublisher {
  readonly #nc: NatsConnection | undefined;
  readonly #inbox: string = "";
  readonly #sub: Subscription | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #lingerTimer: NodeJS.Timeout | undefined;
  readonly #queueSize: number;
  readonly #maxPending: number;
  readonly #ackTimeoutMs: number;
  readonly #batchPairs: number;
  readonly #batchBytes: number;
  readonly #lingerMs: number;
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
  #duplicates = 0;
  #batches = 0;

  #seq = 0; // sequence of the last pair enqueued
  #headSeq = 1; // sequence of the pair at the head of the queue
  /** The batches being filled, by subject, in the order they were opened. */
  readonly #open = new Map<string, Open>();
  #openPairs = 0;
  #msgSeq = 0; // sequence of the last message sent
  /** Messages awaiting an ack, by message sequence (in order of expiry). */
  readonly #inflight = new Map<number, Flight>();
  #inflightPairs = 0;
  readonly #recent = new RecentIDs();
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
    const batchPairs = checkInt("batchPairs", opts.batchPairs, 0, 0);
    if (batchPairs > MAX_BATCH_PAIRS) throw new InvalidOptionError(`parity: invalid option: batchPairs: must be between 0 and ${MAX_BATCH_PAIRS}, got ${batchPairs}`);
    this.#batchPairs = batchPairs === 0 ? Math.min(DEFAULT_BATCH_PAIRS, this.#maxPending) : batchPairs;
    if (this.#batchPairs > this.#maxPending) throw new InvalidOptionError(`parity: invalid option: batchPairs (${this.#batchPairs}) must not exceed maxPending (${this.#maxPending})`);
    this.#batchBytes = checkInt("batchBytes", opts.batchBytes, DEFAULT_BATCH_BYTES, 0);
    if (this.#batchBytes > MAX_SIZE) throw new InvalidOptionError(`parity: invalid option: batchBytes: must be between 0 and ${MAX_SIZE}, got ${this.#batchBytes}`);
    this.#lingerMs = checkInt("lingerMs", opts.lingerMs, DEFAULT_LINGER_MS, 0);
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
      duplicates: this.#duplicates,
      batches: this.#batches,
    };
  }

  /**
   * flush sends the open batches at once and resolves once every pair
   * enqueued before the call has been acknowledged or has failed; it
   * rejects with a DeadlineError when the deadline passes first.
   */
  flush(opts: DeadlineOptions = {}): Promise<void> {
    const pending = this.#len + this.#openPairs + this.#inflightPairs;
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
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    try {
      this.#sub?.unsubscribe();
    } catch {
      // the connection is closed: the subscription is gone anyway
    }
    const n = this.#len + this.#openPairs + this.#inflightPairs;
    this.#failed += n;
    this.#ring.fill(undefined);
    this.#len = 0;
    this.#open.clear();
    this.#openPairs = 0;
    this.#inflight.clear();
    this.#inflightPairs = 0;
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

  /**
   * drain moves queued pairs into their subjects' batches for at most
   * SLICE_MS or SLICE_PAIRS pairs, sends the batches that are full, due, or
   * flushed, then yields the event loop. Pairs in open batches count against
   * maxPending with those awaiting an ack.
   */
  #drain(): void {
    this.#scheduled = false;
    if (this.#stopped) return;
    const until = performance.now() + SLICE_MS;
    let n = 0;
    while (this.#len > 0) {
      if (this.#inflightPairs + this.#openPairs >= this.#maxPending) {
        // Waiting for acks; with none to wait for, the open batches go now.
        if (this.#inflightPairs === 0) this.#sendOpen();
        break;
      }
      const pair = this.#ring[this.#head] as Pair;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#queueSize;
      this.#len--;
      this.#add(pair, this.#headSeq++);
      if (++n >= SLICE_PAIRS || performance.now() >= until) break;
    }
    if (this.#len === 0 && this.#waiters.length > 0) this.#sendOpen();
    else this.#sendDue(performance.now());
    if (this.#len > 0 && this.#inflightPairs + this.#openPairs < this.#maxPending) this.#schedule();
    this.#armLinger();
  }

  /** add encodes pair into its subject's open batch, sending the batch when it is full. */
  #add(pair: Pair, seq: number): void {
    if (typeof pair.id === "string" && this.#recent.seen(pair.id, performance.now())) {
      // Sent already: a batch cannot carry the pair's id as its
      // Nats-Msg-Id, so the publisher recognises the repeat itself.
      this.#duplicates++;
      this.#complete(seq, true);
      return;
    }
    let data: string;
    try {
      data = encodePair(pair);
    } catch (e) {
      this.#complete(seq, false);
      const msg = e instanceof FieldError ? `parity: invalid pair: field ${e.field}: ${e.problem}` : `parity: invalid pair: ${errorText(e)}`;
      this.#report(new Error(msg));
      return;
    }
    const subj = subject(pair.experiment, pair.operation);
    const bytes = byteLength(data);
    const id = pair.id as string;
    let b = this.#open.get(subj) ?? this.#openBatch(subj);
    if (!b.w.add(data, id, bytes)) {
      this.#sendBatch(b);
      b = this.#openBatch(subj);
      b.w.add(data, id, bytes); // an empty batch takes any pair
    }
    b.seqs.push(seq);
    this.#openPairs++;
    if (b.w.length >= this.#batchPairs) this.#sendBatch(b);
  }

  #openBatch(subj: string): Open {
    const b: Open = { subject: subj, w: new BatchWriter(this.#batchPairs, this.#batchBytes), seqs: [], since: performance.now() };
    this.#open.set(subj, b);
    return b;
  }

  /** sendDue sends every open batch whose first pair has waited lingerMs, oldest first. */
  #sendDue(now: number): void {
    for (const b of this.#open.values()) {
      if (now - b.since < this.#lingerMs) break; // opened in order: the rest are younger
      this.#sendBatch(b);
    }
  }

  /** sendOpen sends every open batch, oldest first. */
  #sendOpen(): void {
    for (const b of this.#open.values()) this.#sendBatch(b);
  }

  /** armLinger makes sure one timer sends the oldest open batch when its linger ends. */
  #armLinger(): void {
    if (this.#lingerTimer !== undefined || this.#stopped) return;
    const oldest = this.#open.values().next();
    if (oldest.done === true) return;
    const wait = Math.max(0, Math.ceil(oldest.value.since + this.#lingerMs - performance.now()));
    this.#lingerTimer = setTimeout(() => {
      this.#lingerTimer = undefined;
      if (this.#stopped) return;
      this.#sendDue(performance.now());
      if (this.#len > 0) this.#schedule();
      this.#armLinger();
    }, wait);
    this.#lingerTimer.unref();
  }

  /** sendBatch publishes b's pairs as one message with a reply subject on which JetStream acknowledges it. */
  #sendBatch(b: Open): void {
    this.#open.delete(b.subject);
    const m = b.w.finish();
    if (m === undefined) return;
    const n = b.seqs.length;
    this.#openPairs -= n;
    this.#inflightPairs += n;
    const seq = ++this.#msgSeq;
    const f: Flight = { subject: b.subject, id: m.id, data: m.data, seqs: b.seqs, expires: performance.now() + this.#ackTimeoutMs, retries: 0 };
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

  /** onAck handles JetStream's reply to one message. */
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

  /** armSweep makes sure one timer fails the messages whose ack is overdue. */
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

  /** settle counts the outcome of message seq's pairs once: problem undefined is published. */
  #settle(seq: number, problem: string | undefined): void {
    const f = this.#inflight.get(seq);
    if (f === undefined) return; // already counted (timed out, or by close)
    this.#inflight.delete(seq);
    this.#inflightPairs -= f.seqs.length;
    if (problem === undefined) this.#batches++;
    for (const s of f.seqs) this.#complete(s, problem === undefined);
    if (problem !== undefined) {
      const what = f.seqs.length === 1 ? f.subject : `${f.subject} (a batch of ${f.seqs.length} pairs)`;
      this.#report(new Error(`parity: publish ${what}: ${problem}`));
    }
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
