package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Errors returned by the package, wrapped; test with [errors.Is].
var (
	// ErrInvalidToken reports a token that is malformed, unknown or revoked.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrNotFound reports that no active token has the name.
	ErrNotFound = errors.New("auth: no active token with that name")
	// ErrExists reports that an active token already has the name.
	ErrExists = errors.New("auth: an active token already has that name")
	// ErrInvalidName reports a token name that is not 1 to 64 characters of
	// A-Z a-z 0-9 . _ - starting with a letter or digit.
	ErrInvalidName = errors.New("auth: invalid token name")
	// ErrInvalidRole reports a role other than viewer, operator and ingest.
	ErrInvalidRole = errors.New("auth: invalid role")
	// ErrInvalidOption reports an [Options] field out of range.
	ErrInvalidOption = errors.New("auth: invalid option")
)

// Role is what a token allows.
type Role string

// The roles.
const (
	// RoleViewer reads the dashboard and the JSON API.
	RoleViewer Role = "viewer"
	// RoleOperator changes diff rules, accepts noise proposals and sets
	// gates, and reads like a viewer.
	RoleOperator Role = "operator"
	// RoleIngest sends pairs to POST /api/v1/pairs and evaluates rollout
	// flags over OFREP (which every role may), and nothing else.
	RoleIngest Role = "ingest"
)

// Roles lists every role.
var Roles = []Role{RoleViewer, RoleOperator, RoleIngest}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("%w %q: want viewer, operator or ingest", ErrInvalidRole, s)
	}
	return r, nil
}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	return r == RoleViewer || r == RoleOperator || r == RoleIngest
}

// Allows reports whether a holder of r may do what need allows: every role
// allows itself, and operator also allows viewer.
func (r Role) Allows(need Role) bool {
	return r.Valid() && (r == need || r == RoleOperator && need == RoleViewer)
}

// Principal is who presented a token.
type Principal struct {
	// Name is the token's name, for logs and audit; never the token.
	Name string
	Role Role
	// TokenID is the token's row; 0 for a token that is not in the database
	// (the collector's --viewer-token, --operator-token and --ingest-token).
	TokenID int64
}

// Token is a stored token as [Tokens.List] shows it: never the token itself.
type Token struct {
	ID        int64
	Name      string
	Role      Role
	CreatedAt time.Time
	// LastUsedAt is when a check last found the token, to the minute; zero
	// when never.
	LastUsedAt time.Time
	// RevokedAt is when the token was revoked; zero while it is active.
	RevokedAt time.Time
}

// Active reports whether the token has not been revoked.
func (t Token) Active() bool { return t.RevokedAt.IsZero() }

// Token format.
const (
	// Prefix starts every token, so a leaked one is recognisable (secret
	// scanners, logs reviews).
	Prefix = "pty_"
	// randomBytes is the entropy of a token: 256 bits.
	randomBytes = 32
	// TokenLength is the length of a token in characters.
	TokenLength = len(Prefix) + (randomBytes*8+5)/6
)

// newToken returns a fresh token and its hash.
func newToken() (string, [sha256.Size]byte) {
	var b [randomBytes]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead (Go 1.24+)
	tok := Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, sha256.Sum256([]byte(tok))
}

// WellFormed reports whether s looks like a token of this package: the prefix
// and 43 base64url characters. It does not say the token is valid.
func WellFormed(s string) bool {
	if len(s) != TokenLength || s[:len(Prefix)] != Prefix {
		return false
	}
	for _, c := range []byte(s[len(Prefix):]) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidName reports whether s may name a token: 1 to 64 characters of A-Z
// a-z 0-9 . _ -, starting with a letter or digit.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, c := range []byte(s) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w %q: use 1 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit", ErrInvalidName, name)
	}
	return nil
}
