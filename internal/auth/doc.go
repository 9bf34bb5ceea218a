// Package auth keeps the collector's API tokens in PostgreSQL: who may read
// the dashboard and the API ([RoleViewer]), change rules and gates
// ([RoleOperator], which includes viewer), or send pairs over HTTP
// ([RoleIngest], nothing else). Administrators create and revoke tokens with
// `parityctl token`; the collector checks each request's token with
// [Tokens.Check].
//
// Guarantees:
//
//   - A token is "pty_" followed by 43 characters of unpadded base64url: 256
//     bits from crypto/rand. [Tokens.Create] returns it once; only its SHA-256
//     hash is stored. A fast hash is enough for a value of that entropy:
//     slow key-derivation functions (bcrypt, scrypt, argon2) protect
//     low-entropy passwords against guessing after a database leak, and
//     nobody can search 2^256 preimages. It also lets Check find a token by
//     an indexed lookup of its hash, which tells an attacker nothing about
//     valid tokens.
//   - [Tokens.Check] answers [ErrInvalidToken] alike for malformed, unknown
//     and revoked tokens; malformed ones are refused without a query.
//   - Check and [Tokens.Lookup] remember each valid answer for
//     [Options.CacheTTL] (5 seconds by default, at most a minute), so a token
//     revoked elsewhere — by `parityctl token revoke`, or another collector —
//     is refused by every collector at most CacheTTL after the revocation
//     commits. A revocation through the same [Tokens] takes effect at once.
//     Invalid answers are never remembered, so a new token works at once.
//   - The cache holds at most [Options.CacheSize] tokens (1,024 by default,
//     well under 1 MB).
//   - last_used_at is updated at most once a minute per token, and only when a
//     check reaches the database.
//   - [Open] migrates the package's own tables with tern under its advisory
//     lock, with the version in table parity_auth_schema_version, apart from
//     the store's schema; any number of processes may call it at once. A
//     database migrated by a newer version is refused, never rolled back.
//   - Nothing in this package logs, and no error contains a token.
package auth
