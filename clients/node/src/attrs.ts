// How evaluation-context attributes become a pair's user.attrs, the same as
// Go's pkg/migration: strings as they are, booleans as true/false, numbers
// as Go formats them, everything else left out.

import { MAX_ATTR_VALUE_LEN, MAX_ATTRS, MAX_NAME_LEN, MAX_USER_KEY_LEN, truncateUTF8, validToken, type User } from "./envelope.js";

/**
 * formatNumber formats a number attribute as Go's pkg/migration does: a safe
 * integer as Go formats an int (1234567), any other number as Go formats a
 * float64 with strconv.FormatFloat(v, 'g', -1, 64) (0.5, 1e-05,
 * 1.2345675e+06, +Inf, NaN).
 */
export function formatNumber(v: number): string {
  if (Number.isSafeInteger(v)) return String(v === 0 ? 0 : v);
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  // Shortest round-trip digits, as Go's shortest formatting uses.
  const e = v.toExponential(); // "-1.2345675e+6"
  const at = e.indexOf("e");
  const exp = Number(e.slice(at + 1));
  if (exp < -4 || exp >= 6) return goExp(e.slice(0, at), exp);
  return String(v); // plain decimal for -4 <= exp < 6, same digits as Go
}

function goExp(mantissa: string, exp: number): string {
  const sign = exp < 0 ? "-" : "+";
  const a = Math.abs(exp);
  return `${mantissa}e${sign}${a < 10 ? "0" : ""}${a}`;
}

/** scalar is the text of an attribute value, or undefined when Go would leave it out. */
export function scalar(v: unknown): string | undefined {
  switch (typeof v) {
    case "string":
      return v;
    case "boolean":
      return v ? "true" : "false";
    case "number":
      return formatNumber(v);
    case "bigint":
      return v.toString();
  }
  return undefined;
}

type Attrs = Readonly<Record<string, unknown>>;

/**
 * buildUser is the pair's user: the targeting key (cut to 256 bytes) and the
 * scalar attributes of the transaction and invocation contexts (the
 * invocation's win), names as the envelope allows, values cut to 128 bytes,
 * at most 16 (the first by name).
 */
export function buildUser(key: string, ec: Attrs, tc: Attrs): User {
  const u: User = { key: truncateUTF8(key, MAX_USER_KEY_LEN) };
  let attrs: Record<string, string> | undefined;
  for (const m of [tc, ec]) {
    for (const k in m) {
      if (k === "targetingKey" || !Object.hasOwn(m, k) || !validToken(k, MAX_NAME_LEN, false)) continue;
      const s = scalar(m[k]);
      attrs ??= {};
      if (s === undefined) {
        delete attrs[k]; // an invocation non-scalar hides a transaction scalar
        continue;
      }
      attrs[k] = truncateUTF8(s, MAX_ATTR_VALUE_LEN);
    }
  }
  if (attrs === undefined) return u;
  const names = Object.keys(attrs);
  if (names.length > MAX_ATTRS) {
    names.sort();
    for (const k of names.slice(MAX_ATTRS)) delete attrs[k];
  }
  if (names.length > 0) u.attrs = attrs;
  return u;
}
