// The shared vectors (testdata/client-vectors.json), read by Go's
// pkg/migration tests too: the same users in the sample, the same segment
// attribute texts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { keyHashHex, inSample, formatNumber } from "../src/index.js";
import { truncateUTF8 } from "../src/envelope.js";
import { readVectors } from "./helpers.js";

const v = readVectors();

test("vectors: sampling hash and membership", () => {
  assert.ok(v.sampling.length >= 10);
  let ins = 0;
  for (const s of v.sampling) {
    assert.equal(keyHashHex(s.key), s.hash, `keyHash(${JSON.stringify(s.key)})`);
    for (const [ratio, want] of Object.entries(s.in ?? {})) {
      assert.equal(inSample(s.key, Number(ratio)), want, `inSample(${JSON.stringify(s.key)}, ${ratio})`);
      if (want) ins++;
    }
  }
  assert.ok(ins > 0, "no vector is in its sample");
});

test("vectors: number attributes formatted as Go formats them", () => {
  assert.ok(v.numbers.length >= 10);
  for (const n of v.numbers) {
    assert.equal(formatNumber(n.number), n.text, `${n.go} ${n.number}`);
  }
});

test("vectors: UTF-8 truncation", () => {
  for (const c of v.truncate) {
    assert.equal(truncateUTF8(c.s, c.n), c.want, `truncate(${JSON.stringify(c.s)}, ${c.n})`);
  }
});

// An oracle for the 32-bit-halves arithmetic: the same hash with BigInt.
function bigHash(key: string): string {
  const M = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(key)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & M;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & M;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & M;
  h ^= h >> 33n;
  return h.toString(16).padStart(16, "0");
}

test("hash agrees with a BigInt oracle on 5000 keys", () => {
  for (let i = 0; i < 5000; i++) {
    const key = i % 7 === 0 ? `üser-${i}-${"x".repeat(i % 50)}` : `user-${i * 7919}`;
    assert.equal(keyHashHex(key), bigHash(key), key);
  }
});

test("sampling: about one user in n, and sticky", () => {
  for (const n of [2, 10, 100]) {
    let inN = 0;
    const users = 20000;
    for (let i = 0; i < users; i++) {
      const k = `user-${i}`;
      const got = inSample(k, n);
      assert.equal(inSample(k, n), got);
      if (got) inN++;
    }
    const want = users / n;
    assert.ok(Math.abs(inN - want) < 5 * Math.sqrt(want), `n=${n}: ${inN} in the sample, want about ${want}`);
  }
});

test("vectors: wire names and limits are Go's", async () => {
  const env = await import("../src/envelope.js");
  const pubmod = await import("../src/publisher.js");
  const { REPORT_SUBJECT } = pubmod;
  const { PubHeaders } = await import("@nats-io/jetstream");
  const { STREAM } = await import("./helpers.js");
  const w = v.wire;
  assert.deepEqual(
    {
      envelope_version: env.VERSION,
      batch_version: env.BATCH_VERSION,
      max_batch_pairs: env.MAX_BATCH_PAIRS,
      hook_batch_pairs: pubmod.DEFAULT_BATCH_PAIRS,
      hook_batch_bytes: pubmod.DEFAULT_BATCH_BYTES,
      hook_linger_ms: pubmod.DEFAULT_LINGER_MS,
      hook_recent_id_window_ms: pubmod.RECENT_ID_WINDOW_MS,
      pair_subject_prefix: env.SUBJECT_PREFIX,
      pair_stream: STREAM,
      hook_report_subject: REPORT_SUBJECT,
      msg_id_header: PubHeaders.MsgIdHdr,
      max_size: env.MAX_SIZE,
      max_name_len: env.MAX_NAME_LEN,
      max_id_len: env.MAX_ID_LEN,
      max_user_key_len: env.MAX_USER_KEY_LEN,
      max_attrs: env.MAX_ATTRS,
      max_attr_value_len: env.MAX_ATTR_VALUE_LEN,
      max_error_len: env.MAX_ERROR_LEN,
      stages: [...env.STAGES],
    },
    w,
  );
});

test("vectors: batches are Go's bytes, ids and splits (Go's decoder reads these bytes in pkg/migration)", async () => {
  const { packPairs, BatchWriter } = await import("../src/envelope.js");
  assert.ok(v.batches.length >= 3, "batch vectors");
  let batches = 0;
  for (const c of v.batches) {
    const pairs = c.pairs.map((s: string) => JSON.parse(s));
    const got = packPairs(pairs, c.max_pairs, c.max_bytes);
    assert.deepEqual(
      got.map((m) => ({ subject: m.subject, id: m.id })),
      c.messages.map((m: any) => ({ subject: m.subject, id: m.id })),
      c.explanation,
    );
    for (const [i, m] of got.entries()) {
      assert.equal(m.data, c.messages[i].data, `${c.explanation}: message ${i}`);
      if (JSON.parse(m.data).version === 2) batches++;
    }
    // The encoder writes back exactly the envelope each pair came from.
    for (const s of c.pairs) assert.equal(packPairs([JSON.parse(s)], 1, 1)[0]?.data, s);
  }
  assert.ok(batches > 0, "no vector is a version-2 batch");
  // A writer refuses what does not fit and still takes one oversized pair.
  const w = new BatchWriter(2, 100);
  assert.equal(w.add("x".repeat(500), "a", 500), true);
  assert.equal(w.add("{}", "b", 2), false);
  assert.deepEqual(w.finish(), { data: "x".repeat(500), id: "a" });
  assert.equal(w.finish(), undefined);
});
