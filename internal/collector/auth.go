package collector

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/parityhq/parity/internal/auth"
)

// tokenChecker checks tokens kept in the database; *auth.Tokens satisfies it.
type tokenChecker interface {
	Check(ctx context.Context, token string) (auth.Principal, error)
	Lookup(ctx context.Context, id int64) (auth.Principal, error)
}

// public marks a route anyone may use; it is not a role a token can have.
const public auth.Role = "public"

// anyRole marks a route every valid token may use, whatever its role, and an
// anonymous viewer where those are allowed (see [allows]); like public, it
// is not a role a token can have.
const anyRole auth.Role = "any"

// Route patterns the access table and the CSRF rules refer to.
const (
	pathLogin       = "/login"
	pathLogout      = "/logout"
	pathGateConfirm = "/api/v1/experiments/:name/gate/confirm"
	// pathGateRollback is Flagger's rollback webhook.
	pathGateRollback = "/api/v1/experiments/:name/gate/rollback"
	pathIngest       = "/api/v1/pairs"
)

// routeAccess is who may use each route, keyed by method and path as
// registered with Echo. A registered route missing here is refused to
// everyone (and TestEveryRouteHasAccess fails): new routes are closed until
// someone decides who may use them.
var routeAccess = map[string]auth.Role{
	"GET /healthz":           public,
	"GET /readyz":            public,
	"GET /metrics":           public, // process and pipeline counters only: no experiment names, no pair data
	"GET /static*":           public,
	"GET /login":             public,
	"POST /login":            public, // CSRF-checked and rate-limited
	"POST /logout":           public, // CSRF-checked; only clears the session cookie
	"GET /":                  auth.RoleViewer,
	"GET /experiments/:name": auth.RoleViewer,
	"GET /samples/:id":       auth.RoleViewer,
	"GET /dead-letters":      auth.RoleViewer,

	"GET /api/v1/experiments":                              auth.RoleViewer,
	"GET /api/v1/experiments/:name/segments":               auth.RoleViewer,
	"GET /api/v1/experiments/:name/samples":                auth.RoleViewer,
	"GET /api/v1/samples/:id":                              auth.RoleViewer,
	"GET /api/v1/dead-letters":                             auth.RoleViewer,
	"GET /api/v1/experiments/:name/signatures":             auth.RoleViewer,
	"GET /api/v1/experiments/:name/noise":                  auth.RoleViewer,
	"GET /api/v1/experiments/:name/rules":                  auth.RoleViewer,
	"GET /api/v1/experiments/:name/rules/history":          auth.RoleViewer,
	"GET /api/v1/samples/:id/diff":                         auth.RoleViewer,
	"GET /api/v1/experiments/:name/gate":                   auth.RoleViewer,
	"GET /api/v1/openapi.json":                             auth.RoleViewer,
	"POST " + pathGateRollback:                             auth.RoleViewer, // reads only: Flagger's webhook is a POST
	"POST " + pathGateConfirm:                              auth.RoleViewer, // reads only: Flagger's webhook is a POST
	"GET /api/v1/experiments/:name/gate/spec":              auth.RoleViewer,
	"PUT /api/v1/experiments/:name/rules":                  auth.RoleOperator,
	"POST /api/v1/experiments/:name/noise/accept":          auth.RoleOperator,
	"PUT /api/v1/experiments/:name/gate/spec":              auth.RoleOperator,
	"GET /api/v1/experiments/:name/redaction":              auth.RoleViewer,
	"GET /api/v1/pipeline":                                 auth.RoleViewer,
	"PUT /api/v1/experiments/:name/redaction":              auth.RoleOperator,
	"GET /api/v1/experiments/:name/segment-config":         auth.RoleViewer,
	"GET /api/v1/experiments/:name/segment-config/history": auth.RoleViewer,
	"PUT /api/v1/experiments/:name/segment-config":         auth.RoleOperator,
	"POST " + pathIngest:                                   auth.RoleIngest,
	"GET /api/v1/rollouts":                                 auth.RoleViewer,
	"GET /api/v1/experiments/:name/rollout":                auth.RoleViewer,
	"GET /api/v1/experiments/:name/rollout/events":         auth.RoleViewer,
	"PUT /api/v1/experiments/:name/rollout":                auth.RoleOperator,
	"POST /api/v1/experiments/:name/rollout/:action":       auth.RoleOperator,
	"POST /experiments/:name/rollout/:action":              auth.RoleOperator, // the dashboard's forms; CSRF-checked
	"GET /api/v1/experiments/:name/sweeps":                 auth.RoleViewer,
	"POST /api/v1/experiments/:name/sweeps":                auth.RoleOperator,
	"GET /api/v1/sweeps/:id":                               auth.RoleViewer,
	"POST /api/v1/sweeps/:id/:action":                      auth.RoleOperator,
	"POST /experiments/:name/sweeps/:id/:action":           auth.RoleOperator, // the dashboard's forms; CSRF-checked
	"POST /experiments/:name/sweeps":                       auth.RoleOperator, // the dashboard's form; CSRF-checked

	// OFREP flag evaluation (ofrep.go): applications read their rollout
	// stage with whatever token they hold, usually an ingest token.
	"POST " + pathOFREPFlags:        anyRole,
	"POST " + pathOFREPFlag:         anyRole,
	"GET " + pathOFREPConfiguration: anyRole,
}

// anonymous is who a request without credentials is, when anonymous viewers
// are allowed.
var anonymous = auth.Principal{Name: "anonymous", Role: auth.RoleViewer}

// Context keys.
const (
	ctxPrincipal = "parity.principal"
	ctxVia       = "parity.via" // how the principal was established: bearer, session, anonymous
	ctxCSRF      = "csrf"       // set by the CSRF middleware
)

// Session cookie and its lifetime.
const (
	sessionCookie     = "parity_session"
	csrfCookie        = "parity_csrf"
	DefaultSessionTTL = 12 * time.Hour
)

// authConfig configures [authn].
type authConfig struct {
	// Static are the flag tokens by role.
	Static map[auth.Role][]string
	// DB checks database tokens; nil accepts flag tokens only.
	DB tokenChecker
	// Anonymous lets requests without credentials read.
	Anonymous bool
	// SessionSecret signs session cookies; a random one when empty.
	SessionSecret []byte
	// SessionTTL defaults to DefaultSessionTTL.
	SessionTTL time.Duration
	// Now defaults to time.Now: session expiry and the sign-in limiter.
	Now func() time.Time
	Log *slog.Logger
}

// authn decides who a request comes from and whether they may do what they
// ask.
type authn struct {
	static     []staticToken
	db         tokenChecker
	anonymous  bool
	sessionKey []byte
	sessionTTL time.Duration
	now        func() time.Time
	limiter    *loginLimiter
	log        *slog.Logger
	routes     func() []*echo.Route // set by newEcho, to tell unlisted routes from unknown paths
}

// staticToken is a flag token: only its hash is kept.
type staticToken struct {
	hash [sha256.Size]byte
	p    auth.Principal
}

func newAuthn(cfg authConfig) *authn {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	secret := cfg.SessionSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // never fails (Go 1.24+)
	}
	a := &authn{
		db: cfg.DB, anonymous: cfg.Anonymous, sessionTTL: cfg.SessionTTL, now: cfg.Now, log: cfg.Log,
		sessionKey: macSum(secret, []byte("parity session v1")),
		limiter:    newLoginLimiter(cfg.Now),
	}
	for _, role := range auth.Roles {
		for i, tok := range cfg.Static[role] {
			a.static = append(a.static, staticToken{
				hash: sha256.Sum256([]byte(tok)),
				p:    auth.Principal{Name: fmt.Sprintf("%s-token[%d]", role, i), Role: role},
			})
		}
	}
	return a
}

// errAuthUnavailable answers when the token table cannot be read: the
// request is neither let in nor told its token is wrong.
var errAuthUnavailable = echo.NewHTTPError(http.StatusServiceUnavailable, "cannot check credentials right now; try again")

// verify returns whose token this is: a flag token, else a database token.
// Errors are auth.ErrInvalidToken or errAuthUnavailable; neither contains the
// token.
func (a *authn) verify(ctx context.Context, token string) (auth.Principal, error) {
	if token == "" {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	sum := sha256.Sum256([]byte(token))
	var found *staticToken
	for i := range a.static { // every hash is compared, in constant time
		if secretEqual(sum[:], a.static[i].hash[:]) {
			found = &a.static[i]
		}
	}
	if found != nil {
		return found.p, nil
	}
	if a.db == nil || !auth.WellFormed(token) {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	p, err := a.db.Check(ctx, token)
	if err != nil && !errors.Is(err, auth.ErrInvalidToken) {
		a.log.Error("collector: check token", "err", err)
		return auth.Principal{}, errAuthUnavailable
	}
	return p, err
}

// middleware enforces routeAccess: it establishes who the request comes from
// and refuses it unless their role allows the route.
func (a *authn) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Method + " " + c.Path()
		need, listed := routeAccess[key]
		if !listed {
			if a.registered(c) {
				a.log.Error("collector: route has no access rule; refused", "route", key)
				return echo.NewHTTPError(http.StatusForbidden, "forbidden")
			}
			return next(c) // no such route: 404 or 405
		}
		if need == public {
			return next(c)
		}
		p, via, err := a.identify(c)
		if err != nil {
			return err
		}
		if via != "" {
			c.Set(ctxPrincipal, p) // for the request log, refused or not
			c.Set(ctxVia, via)
		}
		if via == "" || via == "anonymous" && !allows(p.Role, need) {
			return a.unauthenticated(c, need)
		}
		if !allows(p.Role, need) {
			return echo.NewHTTPError(http.StatusForbidden,
				fmt.Sprintf("forbidden: %s has the %s role; this needs %s", p.Name, p.Role, need))
		}
		return next(c)
	}
}

// allows reports whether a holder of role may use a route that needs need:
// any valid role may use an anyRole route, and otherwise [auth.Role.Allows]
// decides.
func allows(role, need auth.Role) bool {
	return need == anyRole && role.Valid() || role.Allows(need)
}

// registered reports whether the request matched a registered route (as
// opposed to no route at all).
func (a *authn) registered(c echo.Context) bool {
	if a.routes == nil || c.Path() == "" {
		return false
	}
	for _, r := range a.routes() {
		if r.Method == c.Request().Method && r.Path == c.Path() {
			return true
		}
	}
	return false
}

// identify returns who the request comes from and how: its bearer token (or
// X-API-Key on OFREP routes, see credential), else its session cookie, else (Flagger's webhook only) a token in the body,
// else anonymous when allowed. via is "" when nobody could be established.
func (a *authn) identify(c echo.Context) (auth.Principal, string, error) {
	ctx := c.Request().Context()
	if tok, ok := credential(c); ok {
		if tok == "" {
			return auth.Principal{}, "", a.challenge(c, "missing bearer token")
		}
		p, err := a.verify(ctx, tok)
		if errors.Is(err, auth.ErrInvalidToken) {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="parity", error="invalid_token"`)
			return auth.Principal{}, "", echo.NewHTTPError(http.StatusUnauthorized, "invalid token (unknown or revoked)")
		}
		if err != nil {
			return auth.Principal{}, "", err
		}
		return p, "bearer", nil
	}
	p, ok, err := a.fromSession(c)
	if err != nil {
		return auth.Principal{}, "", err
	}
	if ok {
		return p, "session", nil
	}
	if c.Request().Method == http.MethodPost && (c.Path() == pathGateConfirm || c.Path() == pathGateRollback) {
		if tok := webhookToken(c.Request()); tok != "" {
			p, err := a.verify(ctx, tok)
			if err == nil {
				return p, "bearer", nil
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				return auth.Principal{}, "", err
			}
		}
	}
	if a.anonymous {
		return anonymous, "anonymous", nil
	}
	return auth.Principal{}, "", nil
}

// unauthenticated answers a request that needs credentials it lacks: pages
// go to the sign-in form, the API and OFREP answer 401.
func (a *authn) unauthenticated(c echo.Context, need auth.Role) error {
	r := c.Request()
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(c.Path(), "/api/") && !strings.HasPrefix(c.Path(), pathOFREP) {
		return c.Redirect(http.StatusSeeOther, pathLogin+"?next="+url.QueryEscape(r.URL.RequestURI()))
	}
	return a.challenge(c, "authentication required: send Authorization: Bearer <"+string(need)+" token>")
}

func (a *authn) challenge(c echo.Context, msg string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="parity"`)
	return echo.NewHTTPError(http.StatusUnauthorized, msg)
}

// bearer returns the token of an "Authorization: Bearer" header, and whether
// there was one. Other schemes (a proxy's Basic credentials) are ignored.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get(echo.HeaderAuthorization)
	if len(h) < len("Bearer") || !strings.EqualFold(h[:len("Bearer")], "Bearer") {
		return "", false
	}
	rest := h[len("Bearer"):]
	if rest != "" && rest[0] != ' ' {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// webhookToken reads {"metadata": {"token": "…"}} from a JSON body and puts
// the body back: Flagger's webhooks cannot send headers, only metadata.
func webhookToken(r *http.Request) string {
	if r.Body == nil {
		return ""
	}
	const limit = 64 << 10
	head, err := io.ReadAll(io.LimitReader(r.Body, limit))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err != nil || len(head) == limit {
		return ""
	}
	var v struct {
		Metadata map[string]any `json:"metadata"`
	}
	if json.Unmarshal(head, &v) != nil {
		return ""
	}
	tok, _ := v.Metadata["token"].(string)
	return tok
}

type readCloser struct {
	io.Reader
	io.Closer
}

// --- sessions ---------------------------------------------------------------

// session is what the session cookie carries, signed: who signed in, until
// when, and what ties it to their token. It holds no secret.
type session struct {
	Name string    `json:"n"`
	Role auth.Role `json:"r"`
	// ID is the database token's id; the session ends with the token.
	ID int64 `json:"i,omitempty"`
	// Bind ties the session to a flag token: an HMAC of its hash.
	Bind    string `json:"b,omitempty"`
	Expires int64  `json:"e"`
}

func macSum(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func (a *authn) bind(hash [sha256.Size]byte) string {
	return base64.RawURLEncoding.EncodeToString(macSum(a.sessionKey, append([]byte("bind:"), hash[:]...))[:16])
}

// newSession returns the cookie value for p: base64url(JSON) "." base64url(HMAC).
func (a *authn) newSession(p auth.Principal) (string, time.Time) {
	exp := a.now().Add(a.sessionTTL)
	s := session{Name: p.Name, Role: p.Role, ID: p.TokenID, Expires: exp.Unix()}
	if p.TokenID == 0 {
		for _, st := range a.static {
			if st.p == p {
				s.Bind = a.bind(st.hash)
			}
		}
	}
	b, _ := json.Marshal(s) // plain fields always marshal
	payload := base64.RawURLEncoding.EncodeToString(b)
	sig := base64.RawURLEncoding.EncodeToString(macSum(a.sessionKey, []byte(payload)))
	return payload + "." + sig, exp
}

// readSession returns the request's session when its cookie is authentic and
// unexpired.
func (a *authn) readSession(c echo.Context) (session, bool) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return session{}, false
	}
	payload, sig, ok := strings.Cut(ck.Value, ".")
	if !ok || len(ck.Value) > 1024 {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !secretEqual(got, macSum(a.sessionKey, []byte(payload))) {
		return session{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	var s session
	if err != nil || json.Unmarshal(b, &s) != nil {
		return session{}, false
	}
	if !a.now().Before(time.Unix(s.Expires, 0)) {
		return session{}, false
	}
	return s, true
}

// fromSession returns who the session cookie belongs to, as long as the token
// it was opened with is still valid.
func (a *authn) fromSession(c echo.Context) (auth.Principal, bool, error) {
	s, ok := a.readSession(c)
	if !ok {
		return auth.Principal{}, false, nil
	}
	var p auth.Principal
	switch {
	case s.ID > 0 && a.db != nil:
		var err error
		p, err = a.db.Lookup(c.Request().Context(), s.ID)
		if errors.Is(err, auth.ErrInvalidToken) {
			return auth.Principal{}, false, nil
		}
		if err != nil {
			a.log.Error("collector: check session token", "err", err)
			return auth.Principal{}, false, errAuthUnavailable
		}
	case s.Bind != "":
		for _, st := range a.static {
			if secretEqual([]byte(a.bind(st.hash)), []byte(s.Bind)) {
				p = st.p
			}
		}
	}
	if p.Role != s.Role || !p.Role.Allows(auth.RoleViewer) {
		return auth.Principal{}, false, nil
	}
	return p, true, nil
}

// setSession sets or (p zero) clears the session cookie. It is Secure when
// the request came over TLS, directly or through a trusted proxy.
func (a *authn) setSession(c echo.Context, p auth.Principal) {
	ck := &http.Cookie{Name: sessionCookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Scheme() == "https"}
	if p == (auth.Principal{}) {
		ck.MaxAge = -1
	} else {
		var exp time.Time
		ck.Value, exp = a.newSession(p)
		ck.Expires = exp
		ck.MaxAge = int(a.sessionTTL / time.Second)
	}
	c.SetCookie(ck)
}

// --- CSRF -------------------------------------------------------------------

// csrf protects forms that change state (sign-in, sign-out, and whatever
// operator forms come) and API calls riding on the session cookie. Browsers
// that send Sec-Fetch-Site (all current ones) are checked on that: a
// state-changing request from another origin or site is refused. Others must
// send the double-submit token (form field "csrf" or header X-CSRF-Token)
// matching the parity_csrf cookie. Every refusal is a 403.
func csrf() echo.MiddlewareFunc {
	refuse := func(error, echo.Context) error {
		return echo.NewHTTPError(http.StatusForbidden, "forbidden: missing or invalid CSRF token; reload the page and try again")
	}
	cfg := middleware.CSRFConfig{
		Skipper:        csrfSkip,
		TokenLookup:    "form:csrf,header:" + echo.HeaderXCSRFToken,
		CookieName:     csrfCookie,
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSameSite: http.SameSiteStrictMode,
		ErrorHandler:   refuse,
		// same-site (a sibling subdomain) and cross-site state changes are
		// refused outright rather than trusted to the token.
		AllowSecFetchSiteFunc: func(c echo.Context) (bool, error) { return false, refuse(nil, c) },
	}
	plain := middleware.CSRFWithConfig(cfg)
	cfg.CookieSecure = true
	secure := middleware.CSRFWithConfig(cfg)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		p, s := plain(next), secure(next)
		return func(c echo.Context) error {
			// Echo compares the cookie with the submitted token as they
			// are, so an empty cookie would equal an empty field. A cookie
			// that is not a token this collector could have made is
			// dropped from the request: Echo then makes a fresh random one,
			// which nothing submitted can equal.
			dropCookieUnless(c.Request(), csrfCookie, wellFormedCSRF)
			if c.Scheme() == "https" {
				return s(c)
			}
			return p(c)
		}
	}
}

// secretEqual compares two secrets (token hashes, MACs, bindings) in
// constant time. An empty secret equals nothing, not even another empty
// one: every comparison of secrets in this package goes through here.
func secretEqual(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && subtle.ConstantTimeCompare(a, b) == 1
}

// csrfTokenLength is the length of the tokens Echo's CSRF middleware makes
// (its default), of letters and digits.
const csrfTokenLength = 32

// wellFormedCSRF reports whether v could be a CSRF token this collector
// made: never empty.
func wellFormedCSRF(v string) bool {
	if len(v) != csrfTokenLength {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// dropCookieUnless removes every cookie called name whose value fails ok
// from r's Cookie headers.
func dropCookieUnless(r *http.Request, name string, ok func(string) bool) {
	cookies := r.Cookies()
	drop := false
	for _, ck := range cookies {
		if ck.Name == name && !ok(ck.Value) {
			drop = true
		}
	}
	if !drop {
		return
	}
	r.Header.Del("Cookie")
	for _, ck := range cookies {
		if ck.Name != name || ok(ck.Value) {
			r.AddCookie(ck)
		}
	}
}

// csrfSkip says which requests need no CSRF check: those with a bearer token
// or an OFREP X-API-Key (a browser never adds one by itself), API and OFREP
// calls without a session cookie
// (nothing ambient to abuse) or with a safe method, and routes that are no
// pages.
func csrfSkip(c echo.Context) bool {
	if _, ok := credential(c); ok {
		return true
	}
	p := c.Path()
	switch {
	case p == pathLogin || p == pathLogout:
		return false
	case strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, pathOFREP):
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return true
		}
		_, err := c.Cookie(sessionCookie)
		return err != nil
	case p == "" || p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/static"):
		return true
	}
	return false
}

// --- views ------------------------------------------------------------------

// authView is what the page header shows about the visitor.
type authView struct {
	Name, Role string
	// SignedIn: a session; the header offers to sign out.
	SignedIn bool
	// Anonymous: reading without credentials; the header offers to sign in.
	Anonymous bool
	CSRF      string
}

func viewOf(c echo.Context) authView {
	v := authView{}
	v.CSRF, _ = c.Get(ctxCSRF).(string)
	p, _ := c.Get(ctxPrincipal).(auth.Principal)
	switch c.Get(ctxVia) {
	case "session":
		v.Name, v.Role, v.SignedIn = p.Name, string(p.Role), true
	case "anonymous":
		v.Anonymous = true
	}
	return v
}

// principalName is who made the request, for the request log: a token's
// name, "anonymous", or "" before or without authentication.
func principalName(c echo.Context) string {
	p, _ := c.Get(ctxPrincipal).(auth.Principal)
	return p.Name
}

// --- anonymous viewers ------------------------------------------------------

// isLoopback reports whether addr (host:port) listens on loopback only:
// 127.0.0.0/8, ::1 or localhost. An empty host listens everywhere.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
