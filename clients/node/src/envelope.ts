// The pair envelope, version 1, and the batch envelope, version 2, exactly
// as docs/wire-format.md and Go's pkg/envelope define them: the types, the
// limits, validation with errors that name the field, the encoder the
// publisher runs in the background, and the batch writer that packs encoded
// pairs of one subject into one message as Go's envelope.BatchWriter does.

import { createHash, randomUUID } from "node:crypto";

/** The version of a single pair's envelope. */
export const VERSION = 1;
/** The version of a batch envelope: several version-1 pairs of one subject in one message. */
export const BATCH_VERSION = 2;
/** The most pairs one batch envelope may carry. */
export const MAX_BATCH_PAIRS = 1024;
/** The largest encoded envelope, in bytes. */
export const MAX_SIZE = 1_000_000;
/** Pairs are published on `${SUBJECT_PREFIX}.<experiment>.<operation>`. */
export const SUBJECT_PREFIX = "parity.pairs";

export const MAX_NAME_LEN = 64;
export const MAX_ID_LEN = 128;
export const MAX_USER_KEY_LEN = 256;
export const MAX_ATTRS = 16;
export const MAX_ATTR_VALUE_LEN = 128;
export const MAX_ERROR_LEN = 4096;
/** The largest encoded result one side carries: two of them and the rest stay under MAX_SIZE. */
export const MAX_VALUE_LEN = Math.floor((MAX_SIZE - 32 * 1024) / 2);

/** The migration stages, in rollout order. */
export const STAGES = ["off", "freeze", "dualwrite", "shadow", "live", "rampdown", "complete"] as const;
export type Stage = (typeof STAGES)[number];

/** isStage reports whether s is one of STAGES. */
export function isStage(s: unknown): s is Stage {
  return typeof s === "string" && (STAGES as readonly string[]).includes(s);
}

export type Kind = "read" | "write";
export type Status = "ok" | "error" | "timeout" | "skipped" | "panic";

/** What one side returned. */
export interface Observation {
  /** The result; encoded with JSON.stringify. Absent (undefined) when the side returned nothing. */
  value?: unknown;
  /** The error text, at most 4,096 bytes. */
  error?: string;
  status?: Status;
  /** How long the side took, in nanoseconds. */
  duration_ns: number;
}

export interface User {
  key: string;
  attrs?: Record<string, string>;
}

export interface Flag {
  key?: string;
  variant?: string;
  reason?: string;
}

/**
 * Pair is one call observed on both paths. The publisher fills a missing
 * version, id and time.
 */
export interface Pair {
  version?: number;
  id?: string;
  experiment: string;
  operation: string;
  kind: Kind;
  time?: Date | string;
  stage: Stage;
  user: User;
  flag?: Flag;
  mode?: "aa";
  client_verdict?: "match" | "mismatch";
  control: Observation;
  candidate: Observation;
}

/** FieldError names the field of a pair that is invalid. Its message never contains a value. */
export class FieldError extends Error {
  override readonly name = "FieldError";
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`envelope: field ${field}: ${problem}`);
  }
}

/**
 * RawJSON carries a value already encoded as JSON text (a snapshot taken on
 * the caller's path); the encoder copies it verbatim.
 */
export class RawJSON {
  constructor(readonly text: string) {}
}

/** subject returns the subject pairs of experiment and operation are published on. */
export function subject(experiment: string, operation: string): string {
  return `${SUBJECT_PREFIX}.${experiment}.${operation}`;
}

/** newID returns a random pair id: 32 hex digits. */
export function newID(): string {
  return randomUUID().replaceAll("-", "");
}

/** byteLength is the UTF-8 length of s. */
export const byteLength = (s: string): number => Buffer.byteLength(s, "utf8");

/** validToken: 1..max bytes of A-Z a-z 0-9 _ -, plus . and : when ext. */
export function validToken(s: unknown, max: number, ext: boolean): boolean {
  if (typeof s !== "string" || s.length === 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok =
      (c >= 97 && c <= 122) ||
      (c >= 65 && c <= 90) ||
      (c >= 48 && c <= 57) ||
      c === 95 ||
      c === 45 ||
      (ext && (c === 46 || c === 58));
    if (!ok) return false;
  }
  return true;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function trunc(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n) + "…";
}

const STATUSES = new Set<unknown>([undefined, "", "ok", "error", "timeout", "skipped", "panic"]);

function validateObservation(side: string, o: Observation | undefined): void {
  if (o === null || typeof o !== "object") throw new FieldError(side, "missing");
  if (!STATUSES.has(o.status)) throw new FieldError(`${side}.status`, `unknown status "${trunc(String(o.status), 20)}"`);
  if (o.error !== undefined && typeof o.error !== "string") throw new FieldError(`${side}.error`, "not a string");
  if (o.status === "error" && !o.error) throw new FieldError(`${side}.error`, 'missing while status is "error"');
  if (o.error !== undefined && byteLength(o.error) > MAX_ERROR_LEN) throw new FieldError(`${side}.error`, `longer than ${MAX_ERROR_LEN} bytes`);
  if (typeof o.duration_ns !== "number" || !Number.isSafeInteger(o.duration_ns)) throw new FieldError(`${side}.duration_ns`, "missing or not an integer");
  if (o.duration_ns < 0) throw new FieldError(`${side}.duration_ns`, "negative");
}

/**
 * validate checks every field but the values (the encoder checks those) and
 * throws the first problem as a FieldError, in the order Go's
 * envelope.Pair.Validate checks them.
 */
export function validate(p: Pair): void {
  if (p.version !== VERSION) throw new FieldError("version", `unsupported version ${String(p.version)} (this build writes version ${VERSION})`);
  if (!validToken(p.id, MAX_ID_LEN, true)) throw new FieldError("id", `must be 1 to ${MAX_ID_LEN} characters of A-Z a-z 0-9 _ - . :`);
  if (!validToken(p.experiment, MAX_NAME_LEN, false)) throw new FieldError("experiment", `must be 1 to ${MAX_NAME_LEN} characters of A-Z a-z 0-9 _ -`);
  if (!validToken(p.operation, MAX_NAME_LEN, false)) throw new FieldError("operation", `must be 1 to ${MAX_NAME_LEN} characters of A-Z a-z 0-9 _ -`);
  if (p.kind !== "read" && p.kind !== "write") throw new FieldError("kind", `must be "read" or "write", got "${trunc(String(p.kind), 20)}"`);
  if (p.time === undefined) throw new FieldError("time", "missing");
  if (p.time instanceof Date ? isNaN(p.time.getTime()) : !RFC3339.test(String(p.time))) throw new FieldError("time", "not an RFC 3339 time, e.g. 2026-11-21T10:15:30Z");
  if (!isStage(p.stage)) throw new FieldError("stage", `unknown stage "${trunc(String(p.stage), 20)}"`);
  if (p.mode !== undefined && p.mode !== "aa") throw new FieldError("mode", 'must be absent or "aa"');
  if (p.client_verdict !== undefined && p.client_verdict !== "match" && p.client_verdict !== "mismatch") throw new FieldError("client_verdict", 'must be absent, "match" or "mismatch"');
  const u = p.user;
  if (u === null || typeof u !== "object" || typeof u.key !== "string") throw new FieldError("user.key", "missing or not a string");
  if (byteLength(u.key) > MAX_USER_KEY_LEN) throw new FieldError("user.key", `longer than ${MAX_USER_KEY_LEN} bytes`);
  if (u.attrs !== undefined) {
    const names = Object.keys(u.attrs);
    if (names.length > MAX_ATTRS) throw new FieldError("user.attrs", `more than ${MAX_ATTRS} attributes`);
    for (const k of names) {
      if (!validToken(k, MAX_NAME_LEN, false)) throw new FieldError("user.attrs", `attribute name "${trunc(k, 20)}" must be 1 to ${MAX_NAME_LEN} characters of A-Z a-z 0-9 _ -`);
      const v = u.attrs[k];
      if (typeof v !== "string") throw new FieldError(`user.attrs.${k}`, "not a string");
      if (byteLength(v) > MAX_ATTR_VALUE_LEN) throw new FieldError(`user.attrs.${k}`, `longer than ${MAX_ATTR_VALUE_LEN} bytes`);
    }
  }
  if (p.flag !== undefined) {
    for (const name of ["key", "variant", "reason"] as const) {
      const v = p.flag[name];
      if (v !== undefined && (typeof v !== "string" || byteLength(v) > MAX_ATTR_VALUE_LEN)) throw new FieldError(`flag.${name}`, `not a string of at most ${MAX_ATTR_VALUE_LEN} bytes`);
    }
  }
  validateObservation("control", p.control);
  validateObservation("candidate", p.candidate);
}

/** The text an observation gets when its value cannot be encoded. */
export const ENCODE_ERROR_PREFIX = "migration: cannot encode the result as JSON: ";

/**
 * encodeValue encodes one result. It returns [json, undefined] (json
 * undefined when the value is absent) or [undefined, problem].
 */
export function encodeValue(v: unknown): [string | undefined, string | undefined] {
  if (v instanceof RawJSON) return [v.text, undefined];
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    return [undefined, ENCODE_ERROR_PREFIX + errorText(e)];
  }
  if (s !== undefined && s.length > MAX_VALUE_LEN / 3 && byteLength(s) > MAX_VALUE_LEN) {
    return [undefined, `migration: the result is ${byteLength(s)} bytes of JSON, more than the ${MAX_VALUE_LEN} a pair carries`];
  }
  return [s, undefined];
}

/** errorText is the text of a thrown value, cut to MAX_ERROR_LEN bytes; it never throws. */
export function errorText(e: unknown): string {
  let s: string;
  try {
    s = e instanceof Error ? e.message : String(e);
  } catch {
    s = "(a thrown value whose text could not be read)";
  }
  return truncateUTF8(s, MAX_ERROR_LEN);
}

/** truncateUTF8 cuts s to at most n UTF-8 bytes without splitting a character. */
export function truncateUTF8(s: string, n: number): string {
  if (s.length * 3 <= n) return s;
  const b = Buffer.from(s, "utf8");
  if (b.length <= n) return s;
  let i = n;
  while (i > 0 && ((b[i] ?? 0) & 0xc0) === 0x80) i--;
  return b.subarray(0, i).toString("utf8");
}

/** Called by the encoder when a side's value could not be encoded. */
export type ValueErrorHook = (side: "control" | "candidate", problem: string) => void;

/** A symbol-keyed hook on a Pair; JSON never sees it. */
export const ON_VALUE_ERROR: unique symbol = Symbol("parity.onValueError");

function observationJSON(side: "control" | "candidate", o: Observation, onErr: ValueErrorHook | undefined): string {
  let out = "{";
  let error = o.error;
  let status = o.status;
  if (o.value !== undefined) {
    const [json, problem] = encodeValue(o.value);
    if (problem === undefined) {
      if (json !== undefined) out += `"value":${json},`;
    } else {
      onErr?.(side, problem);
      if (status === undefined || (status as string) === "" || status === "ok") {
        error = problem;
        status = "error";
      }
    }
  }
  if (error !== undefined && error !== "") out += `"error":${JSON.stringify(error)},`;
  if (status !== undefined && (status as string) !== "") out += `"status":"${status}",`;
  return out + `"duration_ns":${o.duration_ns}}`;
}

/**
 * encodePair fills a missing version, id and time, validates p and encodes
 * it as one JSON envelope. A value that cannot be encoded turns its side into
 * an error observation (reported to p[ON_VALUE_ERROR]). It throws a
 * FieldError for an invalid pair and an Error for one larger than MAX_SIZE.
 */
export function encodePair(p: Pair & { [ON_VALUE_ERROR]?: ValueErrorHook }): string {
  p.version ??= VERSION;
  p.id ??= newID();
  p.time ??= new Date();
  validate(p);
  const onErr = p[ON_VALUE_ERROR];
  const time = p.time instanceof Date ? p.time.toISOString() : p.time;
  let s =
    `{"version":${p.version},"id":"${p.id}","experiment":"${p.experiment}","operation":"${p.operation}",` +
    `"kind":"${p.kind}","time":"${time}","stage":"${p.stage}","user":{"key":${JSON.stringify(p.user.key)}`;
  if (p.user.attrs !== undefined && Object.keys(p.user.attrs).length > 0) s += `,"attrs":${JSON.stringify(p.user.attrs)}`;
  s += "}";
  if (p.flag !== undefined) {
    const f: Flag = {};
    if (p.flag.key) f.key = p.flag.key;
    if (p.flag.variant) f.variant = p.flag.variant;
    if (p.flag.reason) f.reason = p.flag.reason;
    s += `,"flag":${JSON.stringify(f)}`;
  }
  if (p.mode !== undefined) s += `,"mode":"${p.mode}"`;
  if (p.client_verdict !== undefined) s += `,"client_verdict":"${p.client_verdict}"`;
  s += `,"control":${observationJSON("control", p.control, onErr)},"candidate":${observationJSON("candidate", p.candidate, onErr)}}`;
  if (s.length > MAX_SIZE / 3 && byteLength(s) > MAX_SIZE) {
    throw new Error(`envelope: invalid pair: larger than ${MAX_SIZE} bytes`);
  }
  return s;
}

/** Every batch opens with this; the id follows the pairs. */
const BATCH_HEAD = '{"version":2,"pairs":[';
/** The most bytes a batch has after its last pair: `],"id":"` + 32 hex digits + `"}`. */
const BATCH_TAIL = '],"id":""}'.length + 32;

/**
 * batchID is a batch's id, sent as its Nats-Msg-Id: the first 16 bytes of
 * the SHA-256 of each pair id followed by a newline, in hex, as Go's
 * envelope.BatchWriter derives it, so the same pairs batched the same way
 * have the same id.
 */
export function batchID(ids: readonly string[]): string {
  const h = createHash("sha256");
  for (const id of ids) h.update(id + "\n");
  return h.digest("hex").slice(0, 32);
}

/** A finished message: its bytes (a string) and the id to send as its Nats-Msg-Id. */
export interface BatchMessage {
  data: string;
  id: string;
}

/**
 * BatchWriter packs encoded pairs of one subject into one message, with
 * Go's envelope.BatchWriter's limits and bytes: at most maxPairs pairs and
 * maxBytes encoded bytes (a single larger pair still makes a message of its
 * own); one pair is sent as its own version-1 envelope, more as a version-2
 * batch.
 */
export class BatchWriter {
  readonly #maxPairs: number;
  readonly #maxBytes: number;
  #parts: string[] = [];
  #ids: string[] = [];
  #bytes = BATCH_HEAD.length;

  constructor(maxPairs: number, maxBytes: number) {
    this.#maxPairs = Math.min(Math.max(maxPairs, 1), MAX_BATCH_PAIRS);
    this.#maxBytes = Math.min(Math.max(maxBytes, 1), MAX_SIZE);
  }

  /** How many pairs the batch holds. */
  get length(): number {
    return this.#parts.length;
  }

  /** The encoded size of the batch so far, in bytes, counting the longest tail. */
  size(): number {
    return this.#bytes + BATCH_TAIL;
  }

  /**
   * add appends a pair encodePair wrote (bytes is its UTF-8 length, id its
   * id) and returns true, or returns false, adding nothing, when the batch
   * is at its pair limit or the pair would take it past its byte limit.
   */
  add(data: string, id: string, bytes: number): boolean {
    const n = this.#parts.length;
    if (n >= this.#maxPairs) return false;
    if (n > 0 && this.#bytes + 1 + bytes + BATCH_TAIL > this.#maxBytes) return false;
    this.#bytes += (n > 0 ? 1 : 0) + bytes;
    this.#parts.push(data);
    this.#ids.push(id);
    return true;
  }

  /** finish returns the message and empties the writer; undefined when it holds no pair. */
  finish(): BatchMessage | undefined {
    const parts = this.#parts;
    const ids = this.#ids;
    this.#parts = [];
    this.#ids = [];
    this.#bytes = BATCH_HEAD.length;
    switch (parts.length) {
      case 0:
        return undefined;
      case 1:
        return { data: parts[0] as string, id: ids[0] as string };
    }
    const id = batchID(ids);
    return { data: BATCH_HEAD + parts.join(",") + '],"id":"' + id + '"}', id };
  }
}

/**
 * packPairs encodes pairs in order into the messages a publisher with these
 * limits sends when they are all waiting at once: one open batch per
 * subject, sent when full, the rest at the end in the order they were
 * opened. It throws what encodePair throws. Tests hold it to Go's bytes.
 */
export function packPairs(pairs: Pair[], maxPairs: number, maxBytes: number): (BatchMessage & { subject: string })[] {
  const open = new Map<string, BatchWriter>();
  const out: (BatchMessage & { subject: string })[] = [];
  const send = (subj: string, w: BatchWriter): void => {
    open.delete(subj);
    out.push({ subject: subj, ...(w.finish() as BatchMessage) });
  };
  for (const p of pairs) {
    const data = encodePair(p);
    const subj = subject(p.experiment, p.operation);
    const bytes = byteLength(data);
    let w = open.get(subj);
    if (w === undefined) open.set(subj, (w = new BatchWriter(maxPairs, maxBytes)));
    if (!w.add(data, p.id as string, bytes)) {
      send(subj, w);
      open.set(subj, (w = new BatchWriter(maxPairs, maxBytes)));
      w.add(data, p.id as string, bytes);
    }
    if (w.length >= maxPairs) send(subj, w);
  }
  for (const [subj, w] of open) send(subj, w);
  return out;
}
