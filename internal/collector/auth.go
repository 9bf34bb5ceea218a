package collector

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// tokens is a set of bearer tokens for one role, kept as SHA-256 hashes and
// compared in constant time.
type tokens struct {
	role   string // what the tokens allow, for messages: "ingest", "operator"
	flag   string // the flag that configures them, for messages
	hashes [][sha256.Size]byte
}

func newTokens(role, flag string, raw []string) *tokens {
	t := &tokens{role: role, flag: flag}
	for _, r := range raw {
		t.hashes = append(t.hashes, sha256.Sum256([]byte(r)))
	}
	return t
}

// require answers requests without one of the tokens with 401 (403 when no
// token is configured at all: the endpoint is off, never open).
func (t *tokens) require(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(t.hashes) == 0 {
			return echo.NewHTTPError(http.StatusForbidden, t.role+" endpoints are disabled: start the collector with "+t.flag)
		}
		tok, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
		if !ok || tok == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="parity"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <"+t.role+" token>")
		}
		sum := sha256.Sum256([]byte(tok))
		match := 0
		for i := range t.hashes {
			match |= subtle.ConstantTimeCompare(sum[:], t.hashes[i][:])
		}
		if match != 1 {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="parity", error="invalid_token"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "invalid "+t.role+" token")
		}
		return next(c)
	}
}
