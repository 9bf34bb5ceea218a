// Reader and Writer: one migrating read or write, run the way the stage from
// OpenFeature says, with the same semantics as Go's pkg/migration.

import { OpenFeature, type EvaluationContext, type EvaluationDetails } from "@openfeature/server-sdk";
import { buildUser } from "./attrs.js";
import {
  encodeValue,
  errorText,
  isStage,
  MAX_ERROR_LEN,
  MAX_NAME_LEN,
  ON_VALUE_ERROR,
  RawJSON,
  STAGES,
  truncateUTF8,
  validToken,
  type Kind,
  type Observation,
  type Pair,
  type Stage,
  type Status,
} from "./envelope.js";
import { inSample } from "./hash.js";
import { DeadlineError, InvalidOptionError, withDeadline, type DeadlineOptions, type PairPublisher } from "./publisher.js";

/** What a path receives besides the request: an AbortSignal to honour. */
export interface PathContext {
  /**
   * For the non-authoritative path, aborted at its timeout (and, with
   * cancelWithCaller, with the caller's signal). For the authoritative path,
   * the caller's signal, if it gave one; Parity never aborts it.
   */
  signal?: AbortSignal;
}

/** One path of a migration: the old or the new implementation of one read or write. */
export type PathFn<Req, Res> = (req: Req, ctx: PathContext) => Promise<Res> | Res;

/** The part of an OpenFeature client Parity uses; any OpenFeature server Client satisfies it. */
export interface FlagEvaluator {
  getStringDetails(flagKey: string, defaultValue: string, context?: EvaluationContext): Promise<EvaluationDetails<string>>;
}

/** Defaults of the options. */
export const DEFAULT_TIMEOUT_MS = 1000;
export const DEFAULT_SAMPLING = 1;
export const DEFAULT_MAX_IN_FLIGHT = 1024;

/** Config describes one migrating operation and its options. */
export interface Config<Req, Res> {
  /** Names the migration in every pair and subject: 1 to 64 characters of A-Z a-z 0-9 _ -. */
  experiment: string;
  /** Names the call, same characters. */
  operation: string;
  /** Evaluates flagKey, a string flag whose value is the stage, once per call. */
  flags: FlagEvaluator;
  flagKey: string;
  /** Receives the pairs; publish must not block. */
  publisher: PairPublisher;
  /** The old path: control in every pair. */
  old: PathFn<Req, Res>;
  /** The new path: candidate in every pair. */
  new: PathFn<Req, Res>;
  /** Compares the two results in-process when both succeeded, off the caller's path: the pair's client_verdict. */
  compare?: (control: Res, candidate: Res) => boolean;

  /** Bounds the non-authoritative path, in ms, from the start of the call. Default 1000; must be > 0. */
  timeoutMs?: number;
  /** Publish the pairs of one user in n (1: all, 0: none), chosen by a hash of the targeting key. Default 1. */
  sampling?: number;
  /** The stage when the flag fails or its value is not a stage. Default "off". */
  defaultStage?: Stage;
  /** Abort the non-authoritative read when the caller's signal aborts. Default false. */
  cancelWithCaller?: boolean;
  /** Non-authoritative reads that may run at once, abandoned ones included; beyond, a call is served alone and its pair dropped. Default 1024. */
  maxInFlight?: number;
  /** Encode the authoritative result on the caller's path, before the call returns. Default false. */
  snapshotResult?: boolean;
}

/** Per-call options. */
export interface CallOptions {
  /** The caller's signal: passed to the authoritative path, and to the non-authoritative one as the options say. */
  signal?: AbortSignal;
  /** Overrides the sampling ratio for this call (1: in, 0: out). */
  sampling?: number;
}

/**
 * Counters of a Reader or Writer. Every call in a comparing stage is counted
 * in offered and, once its pair is complete, in exactly one of published,
 * dropped and sampledOut: offered == published + dropped + sampledOut + pending.
 */
export interface MigrationStats {
  experiment: string;
  operation: string;
  kind: Kind;
  calls: number;
  offered: number;
  published: number;
  dropped: number;
  sampledOut: number;
  pending: number;
  flagErrors: number;
  panics: number;
  timeouts: number;
  marshalErrors: number;
  frozen: number;
  inFlight: number;
}

/** WriteFrozenError is what Writer.write rejects with in the freeze stage; neither path is called. */
export class WriteFrozenError extends Error {
  override readonly name = "WriteFrozenError";
  constructor(
    readonly experiment: string,
    readonly operation: string,
  ) {
    super(`migration: writes are frozen (experiment ${experiment}, operation ${operation})`);
  }
}

interface FlagResult {
  stage: Stage;
  variant: string;
  reason: string;
}

/** What one path did in one call. */
interface Side {
  status: Status;
  value?: unknown;
  error?: string;
  durNs: number;
}

const SKIPPED_TEXT = "migration: not attempted because the authoritative write failed";
const ABANDONED_TEXT = "migration: abandoned: the caller's signal was aborted";

const nowMs = (): number => performance.now();
// Timers fire on the loop's cached clock, so one may run a fraction of a ms
// before performance.now() says its time is up: a timed-out side is recorded
// as taking at least the timeout.
const nsSince = (start: number): number => Math.max(0, Math.round((performance.now() - start) * 1e6));

function okSide(value: unknown, start: number): Side {
  return { status: "ok", value, durNs: nsSince(start) };
}

function errorSide(e: unknown, start: number): Side {
  const text = errorText(e);
  return { status: "error", error: text === "" ? "migration: the function failed with an empty error text" : text, durNs: nsSince(start) };
}

/** A synchronous throw (the function did not return a promise) is recorded as a panic, as Go records one. */
function panicSide(e: unknown, start: number): Side {
  return { status: "panic", error: truncateUTF8("panic: " + errorText(e), MAX_ERROR_LEN), durNs: nsSince(start) };
}

/** callPath runs one path as the caller would, with no `this`. */
function callPath<Req, Res>(fn: PathFn<Req, Res>, req: Req, signal: AbortSignal | undefined): Promise<Res> | Res {
  return fn(req, { signal });
}

function invalid(msg: string): InvalidOptionError {
  return new InvalidOptionError(`parity: invalid option: ${msg}`);
}

function intOption(name: string, v: unknown, def: number, min: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw invalid(`${name}: must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** The part Reader and Writer share: the flag, sampling, counters, pairs. */
class Core<Req, Res> {
  readonly experiment: string;
  readonly operation: string;
  readonly kind: Kind;
  readonly flags: FlagEvaluator;
  readonly flagKey: string;
  readonly pub: PairPublisher;
  readonly old: PathFn<Req, Res>;
  readonly new: PathFn<Req, Res>;
  readonly compare: ((a: Res, b: Res) => boolean) | undefined;
  readonly timeoutMs: number;
  readonly sampling: number;
  readonly defaultStage: Stage;
  readonly cancelWithCaller: boolean;
  readonly maxInFlight: number;
  readonly snapshot: boolean;

  calls = 0;
  offered = 0;
  published = 0;
  dropped = 0;
  sampledOut = 0;
  flagErrors = 0;
  panics = 0;
  timeouts = 0;
  marshalErrors = 0;
  frozen = 0;
  inFlight = 0;

  #finishing: (() => void)[] = [];
  #waiters: (() => void)[] = [];

  constructor(cfg: Config<Req, Res>, kind: Kind) {
    if (cfg === null || typeof cfg !== "object") throw invalid("config must be an object");
    if (!validToken(cfg.experiment, MAX_NAME_LEN, false)) throw invalid(`experiment: must be 1 to ${MAX_NAME_LEN} characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(String(cfg.experiment).slice(0, 80))}`);
    if (!validToken(cfg.operation, MAX_NAME_LEN, false)) throw invalid(`operation: must be 1 to ${MAX_NAME_LEN} characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(String(cfg.operation).slice(0, 80))}`);
    if (cfg.flags === null || typeof cfg.flags !== "object" || typeof cfg.flags.getStringDetails !== "function") throw invalid("flags: must be an OpenFeature client (with getStringDetails)");
    if (typeof cfg.flagKey !== "string" || cfg.flagKey === "") throw invalid("flagKey: must be a non-empty string");
    if (cfg.publisher === null || typeof cfg.publisher !== "object" || typeof cfg.publisher.publish !== "function") throw invalid("publisher: must have a publish(pair) method (a Publisher)");
    if (typeof cfg.old !== "function") throw invalid("old: missing or not a function (the off, freeze, dualwrite, shadow, live and rampdown stages call it)");
    if (typeof cfg.new !== "function") throw invalid("new: missing or not a function (the dualwrite, shadow, live, rampdown and complete stages call it)");
    if (cfg.compare !== undefined && typeof cfg.compare !== "function") throw invalid("compare: must be a function");
    const t = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof t !== "number" || !Number.isFinite(t) || t <= 0 || t > 2 ** 31 - 1) throw invalid(`timeoutMs: must be a number of ms > 0 and < 2^31, got ${String(t)}`);
    if (cfg.defaultStage !== undefined && !isStage(cfg.defaultStage)) throw invalid(`defaultStage: unknown stage ${JSON.stringify(String(cfg.defaultStage))} (one of ${STAGES.join(", ")})`);
    if (cfg.cancelWithCaller !== undefined && typeof cfg.cancelWithCaller !== "boolean") throw invalid("cancelWithCaller: must be a boolean");
    if (cfg.snapshotResult !== undefined && typeof cfg.snapshotResult !== "boolean") throw invalid("snapshotResult: must be a boolean");
    this.experiment = cfg.experiment;
    this.operation = cfg.operation;
    this.kind = kind;
    this.flags = cfg.flags;
    this.flagKey = cfg.flagKey;
    this.pub = cfg.publisher;
    this.old = cfg.old;
    this.new = cfg.new;
    this.compare = cfg.compare;
    this.timeoutMs = t;
    this.sampling = intOption("sampling", cfg.sampling, DEFAULT_SAMPLING, 0);
    this.defaultStage = cfg.defaultStage ?? "off";
    this.cancelWithCaller = cfg.cancelWithCaller ?? false;
    this.maxInFlight = intOption("maxInFlight", cfg.maxInFlight, DEFAULT_MAX_IN_FLIGHT, 1);
    this.snapshot = cfg.snapshotResult ?? false;
  }

  /** stage evaluates the flag; a failure or a value that is not a stage gives the default stage, counted. */
  async stage(ec: EvaluationContext): Promise<FlagResult> {
    try {
      const d = await this.flags.getStringDetails(this.flagKey, this.defaultStage, ec);
      if (d.errorCode === undefined && isStage(d.value)) {
        return { stage: d.value, variant: d.variant ?? "", reason: d.reason ?? "" };
      }
      this.flagErrors++;
      return { stage: this.defaultStage, variant: typeof d.variant === "string" ? d.variant : "", reason: "ERROR" };
    } catch {
      this.flagErrors++;
      return { stage: this.defaultStage, variant: "", reason: "ERROR" };
    }
  }

  /** sampled reports whether a call of key is in the sample, and the key and transaction context. */
  sampled(ec: EvaluationContext, opts: CallOptions | undefined): { key: string; tc: EvaluationContext; in: boolean } {
    let tc: EvaluationContext = {};
    try {
      tc = OpenFeature.getTransactionContext();
    } catch {
      // no transaction context
    }
    const key = (typeof ec.targetingKey === "string" && ec.targetingKey) || (typeof tc.targetingKey === "string" ? tc.targetingKey : "");
    let n = this.sampling;
    if (opts?.sampling !== undefined) n = Number.isSafeInteger(opts.sampling) && opts.sampling > 0 ? opts.sampling : 0;
    return { key, tc, in: inSample(key, n) };
  }

  /** snap encodes an authoritative result now (snapshotResult). */
  snap(s: Side): void {
    if (!this.snapshot || s.status !== "ok") return;
    const [json, problem] = encodeValue(s.value);
    if (problem !== undefined) {
      this.marshalErrors++;
      s.status = "error";
      s.error = problem;
      s.value = undefined;
    } else {
      s.value = json === undefined ? undefined : new RawJSON(json);
    }
  }

  /**
   * finish queues the pair of a complete call to be built and published off
   * the caller's path, in slices of at most 256 pairs or about 2 ms per turn
   * of the event loop.
   */
  finish(info: CallInfo, ctrl: Side, cand: Side): void {
    if (this.#finishing.push(() => this.#build(info, ctrl, cand)) === 1) setImmediate(() => this.#runFinishing());
  }

  #runFinishing(): void {
    const jobs = this.#finishing;
    const until = performance.now() + 2;
    let i = 0;
    while (i < jobs.length) {
      (jobs[i++] as () => void)();
      if (i >= 256 || performance.now() >= until) break;
    }
    this.#finishing = jobs.slice(i);
    if (this.#finishing.length > 0) setImmediate(() => this.#runFinishing());
  }

  #build(info: CallInfo, ctrl: Side, cand: Side): void {
    const pair: Pair & { [ON_VALUE_ERROR]?: () => void } = {
      version: 1,
      experiment: this.experiment,
      operation: this.operation,
      kind: this.kind,
      time: new Date(info.epochMs),
      stage: info.flag.stage,
      user: buildUser(info.key, info.ec, info.tc),
      flag: { key: this.flagKey, variant: info.flag.variant, reason: info.flag.reason },
      control: observation(ctrl),
      candidate: observation(cand),
    };
    if (this.compare !== undefined && ctrl.status === "ok" && cand.status === "ok") {
      const v = this.#verdict(ctrl.value, cand.value);
      if (v !== undefined) pair.client_verdict = v;
    }
    pair[ON_VALUE_ERROR] = () => {
      this.marshalErrors++;
    };
    this.publish(pair);
  }

  #verdict(a: unknown, b: unknown): "match" | "mismatch" | undefined {
    try {
      if (a instanceof RawJSON) a = JSON.parse(a.text);
      if (b instanceof RawJSON) b = JSON.parse(b.text);
      return (this.compare as (a: Res, b: Res) => boolean)(a as Res, b as Res) ? "match" : "mismatch";
    } catch {
      this.panics++;
      return undefined;
    }
  }

  publish(pair: Pair): void {
    let ok = false;
    try {
      ok = this.pub.publish(pair) === true;
    } catch {
      ok = false; // a publisher that throws has dropped the pair
    }
    if (ok) this.published++;
    else this.dropped++;
    this.settled();
  }

  /** settled wakes wait() when every offered pair is complete. */
  settled(): void {
    if (this.#waiters.length > 0 && this.pending() === 0) {
      const ws = this.#waiters;
      this.#waiters = [];
      for (const w of ws) w();
    }
  }

  pending(): number {
    return Math.max(0, this.offered - this.published - this.dropped - this.sampledOut);
  }

  wait(opts: DeadlineOptions): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return withDeadline(new Promise<void>((resolve) => this.#waiters.push(resolve)), opts, "parity: wait");
  }

  stats(): MigrationStats {
    return {
      experiment: this.experiment,
      operation: this.operation,
      kind: this.kind,
      calls: this.calls,
      offered: this.offered,
      published: this.published,
      dropped: this.dropped,
      sampledOut: this.sampledOut,
      pending: this.pending(),
      flagErrors: this.flagErrors,
      panics: this.panics,
      timeouts: this.timeouts,
      marshalErrors: this.marshalErrors,
      frozen: this.frozen,
      inFlight: this.inFlight,
    };
  }
}

interface CallInfo {
  flag: FlagResult;
  key: string;
  ec: EvaluationContext;
  tc: EvaluationContext;
  epochMs: number;
}

function observation(s: Side): Observation {
  const o: Observation = { status: s.status, duration_ns: s.durNs };
  if (s.status === "ok") {
    if (s.value !== undefined) o.value = s.value;
  } else {
    o.error = s.error;
  }
  return o;
}

/**
 * Reader runs one migrating read:
 *
 *     stage      served by   compared
 *     off        old         no
 *     freeze     old         no
 *     dualwrite  old         no
 *     shadow     old         new against old
 *     live       new         old against new
 *     rampdown   new         no
 *     complete   new         no
 */
export class Reader<Req, Res> {
  readonly #c: Core<Req, Res>;

  /** new Reader(config) throws an InvalidOptionError naming the field when the config is invalid. */
  constructor(config: Config<Req, Res>) {
    this.#c = new Core(config, "read");
  }

  /**
   * read serves one read the way the stage, evaluated from the flag for ec,
   * says, and settles exactly as the authoritative path does: the same value,
   * or a rejection with the same reason. In the shadow and live stages the
   * other path runs concurrently with its own AbortSignal, aborted at
   * timeoutMs; read does not wait for it, and nothing it does (its value, its
   * rejection, its throw, its latency) reaches the caller.
   */
  async read(ec: EvaluationContext, req: Req, opts?: CallOptions): Promise<Res> {
    const c = this.#c;
    c.calls++;
    if (ec === null || typeof ec !== "object") ec = {}; // a missing context is an anonymous user, never an error
    if (opts === null || typeof opts !== "object") opts = undefined;
    const fl = await c.stage(ec);
    let auth: PathFn<Req, Res>;
    let other: PathFn<Req, Res>;
    const signal = opts?.signal;
    switch (fl.stage) {
      case "shadow":
        auth = c.old;
        other = c.new;
        break;
      case "live":
        auth = c.new;
        other = c.old;
        break;
      case "rampdown":
      case "complete":
        return callPath(c.new, req, signal);
      default: // off, freeze, dualwrite
        return callPath(c.old, req, signal);
    }
    c.offered++;
    const s = c.sampled(ec, opts);
    if (!s.in) {
      c.sampledOut++;
      return auth(req, { signal });
    }
    if (c.inFlight >= c.maxInFlight) {
      c.dropped++;
      return auth(req, { signal });
    }
    c.inFlight++;
    const call = new ReadCall(c, { flag: fl, key: s.key, ec, tc: s.tc, epochMs: Date.now() }, fl.stage === "live");
    const start = nowMs();
    let p: Promise<Res> | Res;
    try {
      p = auth(req, { signal });
    } catch (e) {
      c.panics++;
      call.runOther(other, req, signal, start);
      call.authIn(panicSide(e, start));
      throw e;
    }
    call.runOther(other, req, signal, start);
    let res: Res;
    try {
      res = await p;
    } catch (e) {
      call.authIn(errorSide(e, start));
      throw e;
    }
    const side = okSide(res, start);
    c.snap(side);
    call.authIn(side);
    return res;
  }

  /** stats returns the counters. */
  stats(): MigrationStats {
    return this.#c.stats();
  }

  /**
   * wait resolves once the pair of every call that has returned so far has
   * been handed to the publisher or dropped (at the latest timeoutMs after
   * the last of them), or rejects with a DeadlineError. Call it before
   * closing the publisher at shutdown.
   */
  wait(opts: DeadlineOptions = {}): Promise<void> {
    return this.#c.wait(opts);
  }
}

/** ReadCall is one compared read: whichever side comes in second completes the pair. */
class ReadCall<Req, Res> {
  #auth: Side | undefined;
  #other: Side | undefined;

  constructor(
    readonly c: Core<Req, Res>,
    readonly info: CallInfo,
    readonly authIsNew: boolean,
  ) {}

  authIn(s: Side): void {
    this.#auth = s;
    if (this.#other !== undefined) this.#done();
  }

  #otherIn(s: Side): void {
    this.#other = s;
    if (this.#auth !== undefined) this.#done();
  }

  #done(): void {
    const a = this.#auth as Side;
    const o = this.#other as Side;
    if (this.authIsNew) this.c.finish(this.info, o, a);
    else this.c.finish(this.info, a, o);
  }

  /**
   * runOther starts the non-authoritative path. Its outcome is whichever
   * comes first: its promise settling, its timeout, or (with cancelWithCaller)
   * the caller's signal. Its rejection is always handled here.
   */
  runOther(fn: PathFn<Req, Res>, req: Req, callerSignal: AbortSignal | undefined, start: number): void {
    const c = this.c;
    const ac = new AbortController();
    let claimed = false;
    const follow = c.cancelWithCaller && callerSignal !== undefined;
    const claim = (s: Side): boolean => {
      if (claimed) return false;
      claimed = true;
      clearTimeout(timer);
      if (follow) callerSignal.removeEventListener("abort", onCallerAbort);
      this.#otherIn(s);
      return true;
    };
    const timer = setTimeout(() => {
      if (claim({ status: "timeout", error: `migration: no answer within ${c.timeoutMs} ms; abandoned`, durNs: Math.max(nsSince(start), Math.round(c.timeoutMs * 1e6)) })) {
        c.timeouts++;
        ac.abort(new DOMException(`parity: the non-authoritative path did not answer within ${c.timeoutMs} ms`, "TimeoutError"));
      }
    }, Math.max(0, c.timeoutMs - (nowMs() - start)));
    timer.unref();
    const onCallerAbort = (): void => {
      if (claim({ status: "error", error: ABANDONED_TEXT, durNs: nsSince(start) })) ac.abort(callerSignal?.reason);
    };
    if (follow) {
      if (callerSignal.aborted) {
        onCallerAbort();
      } else {
        callerSignal.addEventListener("abort", onCallerAbort, { once: true });
      }
    }
    let p: Promise<Res> | Res;
    try {
      p = fn(req, { signal: ac.signal });
    } catch (e) {
      c.inFlight--;
      c.panics++;
      claim(panicSide(e, start));
      return;
    }
    Promise.resolve(p).then(
      (v) => {
        c.inFlight--;
        claim(okSide(v, start));
      },
      (e: unknown) => {
        c.inFlight--;
        claim(errorSide(e, start));
      },
    );
  }
}

/**
 * Writer runs one migrating write, the authoritative path first:
 *
 *     stage      writes
 *     off        old only
 *     freeze     neither: rejects with WriteFrozenError
 *     dualwrite  old, then new
 *     shadow     old, then new
 *     live       new, then old
 *     rampdown   new, then old
 *     complete   new only
 */
export class Writer<Req, Res> {
  readonly #c: Core<Req, Res>;

  /** new Writer(config) throws an InvalidOptionError naming the field when the config is invalid. */
  constructor(config: Config<Req, Res>) {
    this.#c = new Core(config, "write");
  }

  /**
   * write performs one write the way the stage says and settles exactly as
   * the authoritative write does. When the authoritative write fails, the
   * other is not attempted and the pair says "skipped". Otherwise the other
   * write runs after it with its own AbortSignal, aborted at timeoutMs (or
   * with the caller's signal); write waits for it until it settles or the
   * timeout passes, and nothing it does reaches the caller. Every call in a
   * comparing stage writes both paths, sampled or not; the sample decides
   * only which pairs are published.
   */
  async write(ec: EvaluationContext, req: Req, opts?: CallOptions): Promise<Res> {
    const c = this.#c;
    c.calls++;
    if (ec === null || typeof ec !== "object") ec = {}; // a missing context is an anonymous user, never an error
    if (opts === null || typeof opts !== "object") opts = undefined;
    const fl = await c.stage(ec);
    let auth: PathFn<Req, Res>;
    let other: PathFn<Req, Res>;
    let authIsNew = false;
    const signal = opts?.signal;
    switch (fl.stage) {
      case "dualwrite":
      case "shadow":
        auth = c.old;
        other = c.new;
        break;
      case "live":
      case "rampdown":
        auth = c.new;
        other = c.old;
        authIsNew = true;
        break;
      case "complete":
        return callPath(c.new, req, signal);
      case "freeze":
        c.frozen++;
        throw new WriteFrozenError(c.experiment, c.operation);
      default: // off
        return callPath(c.old, req, signal);
    }
    c.offered++;
    const s = c.sampled(ec, opts);
    if (!s.in) c.sampledOut++;
    const info: CallInfo = { flag: fl, key: s.key, ec, tc: s.tc, epochMs: Date.now() };
    const done = (a: Side, o: Side): void => {
      if (!s.in) return;
      if (authIsNew) c.finish(info, o, a);
      else c.finish(info, a, o);
    };
    const skipped: Side = { status: "skipped", error: SKIPPED_TEXT, durNs: 0 };
    const start = nowMs();
    let p: Promise<Res> | Res;
    try {
      p = auth(req, { signal });
    } catch (e) {
      c.panics++;
      done(panicSide(e, start), skipped);
      throw e;
    }
    let res: Res;
    try {
      res = await p;
    } catch (e) {
      done(errorSide(e, start), skipped);
      throw e;
    }
    const authSide = okSide(res, start);
    c.snap(authSide);
    const otherSide = await this.#runOther(other, req, signal);
    done(authSide, otherSide);
    return res;
  }

  /** runOther runs the second write; it never rejects. */
  #runOther(fn: PathFn<Req, Res>, req: Req, callerSignal: AbortSignal | undefined): Promise<Side> {
    const c = this.#c;
    const start = nowMs();
    const ac = new AbortController();
    const signal = callerSignal === undefined ? ac.signal : AbortSignal.any([ac.signal, callerSignal]);
    return new Promise<Side>((resolve) => {
      let claimed = false;
      const claim = (s: Side): boolean => {
        if (claimed) return false;
        claimed = true;
        clearTimeout(timer);
        resolve(s);
        return true;
      };
      const timer = setTimeout(() => {
        if (claim({ status: "timeout", error: `migration: no answer within ${c.timeoutMs} ms; abandoned`, durNs: Math.max(nsSince(start), Math.round(c.timeoutMs * 1e6)) })) {
          c.timeouts++;
          ac.abort(new DOMException(`parity: the non-authoritative write did not answer within ${c.timeoutMs} ms`, "TimeoutError"));
        }
      }, c.timeoutMs);
      let p: Promise<Res> | Res;
      try {
        p = fn(req, { signal });
      } catch (e) {
        c.panics++;
        claim(panicSide(e, start));
        return;
      }
      Promise.resolve(p).then(
        (v) => claim(okSide(v, start)),
        (e: unknown) => claim(errorSide(e, start)),
      );
    });
  }

  /** stats returns the counters. */
  stats(): MigrationStats {
    return this.#c.stats();
  }

  /** wait resolves once the pair of every call that has returned so far has been handed to the publisher or dropped. */
  wait(opts: DeadlineOptions = {}): Promise<void> {
    return this.#c.wait(opts);
  }
}

export { DeadlineError };
