package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/auth"
	"github.com/parityhq/parity/internal/store"
)

// Flag tokens of the secured test server.
const (
	flagViewer   = "flag-viewer-token-0123456789"
	flagOperator = "flag-operator-token-0123456789"
	flagIngest   = "flag-ingest-token-0123456789"
)

// fakeClock is the clock sessions, the sign-in limiter and the token cache
// read in these tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// securedServer is a real HTTP server over a seeded database, with database
// tokens of every role, flag tokens of every role, an injected clock, and
// its log captured.
type securedServer struct {
	url                      string
	h                        *handlers
	e                        *echo.Echo
	st                       *store.Store
	clock                    *fakeClock
	log                      *syncBuffer
	viewer, operator, ingest string // database tokens
}

func newSecured(t *testing.T, anonymousViewers bool) *securedServer {
	t.Helper()
	ctx := context.Background()
	st := seedStore(t)
	s := &securedServer{st: st, clock: &fakeClock{now: time.Now()}, log: &syncBuffer{}}
	tokens, err := auth.Open(ctx, st.Pool(), auth.Options{Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		name string
		role auth.Role
		tok  *string
	}{{"ci-viewer", auth.RoleViewer, &s.viewer}, {"release-owner", auth.RoleOperator, &s.operator}, {"shop-ingest", auth.RoleIngest, &s.ingest}} {
		if *x.tok, err = tokens.Create(ctx, x.name, x.role); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.h = &handlers{
		db: st, log: log, ingest: &ingester{}, // no JetStream: an empty body answers 400 before publishing
		sweeps: st,
		auth: newAuthn(authConfig{
			Static: map[auth.Role][]string{auth.RoleViewer: {flagViewer}, auth.RoleOperator: {flagOperator}, auth.RoleIngest: {flagIngest}},
			DB:     tokens, Anonymous: anonymousViewers, Now: s.clock.Now, Log: log,
		}),
	}
	if s.e, err = newEcho(s.h); err != nil {
		t.Fatal(err)
	}
	s.e.Logger.SetOutput(s.log)
	srv := httptest.NewServer(s.e)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// cliTokens is a second view of the token table, as parityctl has.
func (s *securedServer) cliTokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tk, err := auth.Open(context.Background(), s.st.Pool(), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// call sends one request; a non-empty token goes in the Authorization header.
func call(t *testing.T, client *http.Client, method, target, token, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	if token != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if client == nil {
		client = noRedirects(nil)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// noRedirects returns a client that shows redirects instead of following
// them, with jar (may be nil).
func noRedirects(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// endpoint is one request of the access matrix, and what it answers once
// let through.
type endpoint struct {
	name, method, path, body string
	need                     auth.Role
	ok                       int
}

var endpoints = []endpoint{
	{"API read", "GET", "/api/v1/experiments", "", auth.RoleViewer, 200},
	{"page", "GET", "/experiments/orders", "", auth.RoleViewer, 200},
	{"gate confirm", "POST", "/api/v1/experiments/orders/gate/confirm?min_pairs=0&max_rate=50%25", "", auth.RoleViewer, 200},
	{"PUT rules", "PUT", "/api/v1/experiments/orders/rules", `{"rules": {}, "reason": "test"}`, auth.RoleOperator, 200},
	{"accept noise", "POST", "/api/v1/experiments/orders/noise/accept", `{"operation": "GetOrder", "pattern": "price"}`, auth.RoleOperator, 404},
	{"PUT gate spec", "PUT", "/api/v1/experiments/orders/gate/spec", `{"max_rate": 0.01, "min_pairs": 10, "window": "1h", "per_segment": true}`, auth.RoleOperator, 200},
	{"ingest", "POST", "/api/v1/pairs", "", auth.RoleIngest, 400},
}

// TestAccessByRole: every role reaches exactly its endpoints; no credentials
// reach nothing when anonymous viewers are off.
func TestAccessByRole(t *testing.T) {
	s := newSecured(t, false)
	tests := []struct {
		who   string
		token string
		role  auth.Role // "" for no token
	}{
		{"no token", "", ""},
		{"database viewer", s.viewer, auth.RoleViewer},
		{"database operator", s.operator, auth.RoleOperator},
		{"database ingest", s.ingest, auth.RoleIngest},
		{"flag viewer", flagViewer, auth.RoleViewer},
		{"flag operator", flagOperator, auth.RoleOperator},
		{"flag ingest", flagIngest, auth.RoleIngest},
	}
	for _, tt := range tests {
		for _, ep := range endpoints {
			t.Run(tt.who+"/"+ep.name, func(t *testing.T) {
				resp, body := call(t, nil, ep.method, s.url+ep.path, tt.token, ep.body)
				want := ep.ok
				switch {
				case tt.role == "" && ep.method == "GET" && !strings.HasPrefix(ep.path, "/api/"):
					want = http.StatusSeeOther // a page sends people to sign in
				case tt.role == "":
					want = http.StatusUnauthorized
				case !tt.role.Allows(ep.need):
					want = http.StatusForbidden
				}
				if ep.name == "gate confirm" && want == 200 && resp.StatusCode == http.StatusPreconditionFailed {
					want = http.StatusPreconditionFailed // a verdict other than pass: let through all the same
				}
				if resp.StatusCode != want {
					t.Fatalf("%s %s as %s: %d, want %d; body %s", ep.method, ep.path, tt.who, resp.StatusCode, want, body)
				}
				switch want {
				case http.StatusUnauthorized:
					if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("401 without a Bearer challenge")
					}
				case http.StatusSeeOther:
					if loc := resp.Header.Get("Location"); loc != "/login?next=%2Fexperiments%2Forders" {
						t.Errorf("redirected to %q, want the sign-in page with next", loc)
					}
				case http.StatusForbidden:
					if !strings.Contains(body, string(tt.role)+" role") {
						t.Errorf("403 does not say which role the token has: %s", body)
					}
				}
			})
		}
	}
	t.Run("wrong token", func(t *testing.T) {
		for _, tok := range []string{"pty_" + strings.Repeat("x", 43), "not-a-token-at-all-0123"} {
			if resp, _ := call(t, nil, "GET", s.url+"/api/v1/experiments", tok, ""); resp.StatusCode != http.StatusUnauthorized ||
				!strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("wrong token: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("open routes", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/static/style.css", "/login"} {
			if resp, body := call(t, nil, "GET", s.url+p, "", ""); resp.StatusCode != 200 {
				t.Errorf("GET %s without a token: %d %s, want 200", p, resp.StatusCode, body)
			}
		}
		if resp, _ := call(t, nil, "GET", s.url+"/nope", "", ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown path: %d, want 404", resp.StatusCode)
		}
	})
}

// TestAnonymousViewers: without a token, anonymous viewers read and are
// refused everything else, with 401 as before.
func TestAnonymousViewers(t *testing.T) {
	s := newSecured(t, true)
	for _, ep := range endpoints {
		want := ep.ok
		if ep.need != auth.RoleViewer {
			want = http.StatusUnauthorized
		}
		resp, body := call(t, nil, ep.method, s.url+ep.path, "", ep.body)
		if ep.name == "gate confirm" && resp.StatusCode == http.StatusPreconditionFailed {
			want = resp.StatusCode
		}
		if resp.StatusCode != want {
			t.Errorf("%s without a token: %d, want %d; %s", ep.name, resp.StatusCode, want, body)
		}
	}
	_, page := call(t, nil, "GET", s.url+"/", "", "")
	if !strings.Contains(page, `href="/login"`) {
		t.Errorf("an anonymous viewer is not offered to sign in")
	}
	if !strings.Contains(s.log.String(), "principal=anonymous") {
		t.Errorf("the request log does not say the reader was anonymous")
	}
}

// TestFlaggerWebhookToken: Flagger cannot send headers, so the gate's
// confirm webhook also takes a token from the body's metadata.
func TestFlaggerWebhookToken(t *testing.T) {
	s := newSecured(t, false)
	target := s.url + "/api/v1/experiments/orders/gate/confirm?min_pairs=0&max_rate=50%25"
	body := func(tok string) string {
		b, _ := json.Marshal(map[string]any{"name": "orders", "namespace": "shop", "phase": "Progressing", "metadata": map[string]string{"token": tok}})
		return string(b)
	}
	if resp, b := call(t, nil, "POST", target, "", body(s.viewer)); resp.StatusCode != http.StatusOK {
		t.Errorf("viewer token in metadata: %d %s, want 200", resp.StatusCode, b)
	}
	if resp, _ := call(t, nil, "POST", target, "", body("pty_"+strings.Repeat("A", 43))); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token in metadata: %d, want 401", resp.StatusCode)
	}
	if resp, _ := call(t, nil, "PUT", s.url+"/api/v1/experiments/orders/rules", "", `{"rules": {}, "metadata": {"token": "`+s.operator+`"}}`); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a token in the body of another endpoint was accepted: %d", resp.StatusCode)
	}
}

// TestRevokedTokenRefused: a token revoked by parityctl is refused within
// the documented bound (auth.DefaultCacheTTL), checked on the injected clock.
func TestRevokedTokenRefused(t *testing.T) {
	s := newSecured(t, false)
	target := s.url + "/api/v1/experiments"
	if resp, _ := call(t, nil, "GET", target, s.viewer, ""); resp.StatusCode != 200 {
		t.Fatalf("before revocation: %d", resp.StatusCode)
	}
	if err := s.cliTokens(t).Revoke(context.Background(), "ci-viewer"); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(auth.DefaultCacheTTL)
	if resp, _ := call(t, nil, "GET", target, s.viewer, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("%v after revocation: %d, want 401", auth.DefaultCacheTTL, resp.StatusCode)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// browser is a client with a cookie jar that does not follow redirects.
type browser struct {
	t      *testing.T
	client *http.Client
	jar    *cookiejar.Jar
	base   string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: noRedirects(jar), jar: jar, base: base}
}

// csrf loads the sign-in form and returns its CSRF token.
func (b *browser) csrf() string {
	b.t.Helper()
	resp, body := call(b.t, b.client, "GET", b.base+"/login?next=/experiments/orders", "", "")
	m := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || m[1] == "" {
		b.t.Fatalf("sign-in form: %d, no CSRF token:\n%s", resp.StatusCode, body)
	}
	return m[1]
}

// post submits a form.
func (b *browser) post(path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	return call(b.t, b.client, "GET", b.base+path, "", "")
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestLoginSession: signing in sets a session cookie with the right
// attributes; the session loads pages and lets an operator change rules only
// with the CSRF token; signing out ends it.
func TestLoginSession(t *testing.T) {
	s := newSecured(t, false)
	b := newBrowser(t, s.url)
	if resp, _ := b.get("/experiments/orders"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("before signing in: %d, want a redirect to sign in", resp.StatusCode)
	}
	tok := b.csrf()
	resp, body := b.post("/login", url.Values{"csrf": {tok}, "token": {s.operator}, "next": {"/experiments/orders"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/experiments/orders" {
		t.Fatalf("sign in: %d to %q, want 303 to the page asked for; %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	ck := cookieNamed(resp, sessionCookie)
	if ck == nil {
		t.Fatal("no session cookie")
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure || ck.MaxAge != int(DefaultSessionTTL/time.Second) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/, MaxAge 12h, not Secure over plain HTTP", ck)
	}
	if strings.Contains(ck.Value, s.operator) || strings.Contains(ck.Value, s.operator[4:20]) {
		t.Errorf("the session cookie carries the token")
	}

	resp, page := b.get("/experiments/orders")
	if resp.StatusCode != 200 || !strings.Contains(page, "release-owner · operator") || !strings.Contains(page, `action="/logout"`) {
		t.Fatalf("page with a session: %d, want 200 with the signed-in name and a sign-out form", resp.StatusCode)
	}
	if resp, _ := b.get("/api/v1/experiments"); resp.StatusCode != 200 {
		t.Errorf("API read with a session: %d", resp.StatusCode)
	}
	// A change riding on the session cookie needs the CSRF token too.
	rules := `{"rules": {}, "reason": "from the dashboard"}`
	if resp, body := call(t, b.client, "PUT", s.url+"/api/v1/experiments/orders/rules", "", rules); resp.StatusCode != http.StatusForbidden {
		t.Errorf("PUT rules with the session and no CSRF token: %d %s, want 403", resp.StatusCode, body)
	}
	if resp, body := call(t, b.client, "PUT", s.url+"/api/v1/experiments/orders/rules", "", rules, "X-CSRF-Token", tok); resp.StatusCode != http.StatusOK {
		t.Errorf("PUT rules with the session and the CSRF token: %d %s, want 200", resp.StatusCode, body)
	}

	// A tampered cookie is no session.
	u, _ := url.Parse(s.url)
	forged := *ck
	payload, sig, _ := strings.Cut(ck.Value, ".")
	forged.Value = strings.ToUpper(payload[:1]) + strings.ToLower(payload[1:]) + "." + sig
	tampered := newBrowser(t, s.url)
	tampered.jar.SetCookies(u, []*http.Cookie{&forged})
	if resp, _ := tampered.get("/experiments/orders"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("tampered session cookie: %d, want a redirect to sign in", resp.StatusCode)
	}

	resp, _ = b.post("/logout", url.Values{"csrf": {tok}})
	if c := cookieNamed(resp, sessionCookie); resp.StatusCode != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
		t.Fatalf("sign out: %d, cookie %+v; want 303 clearing the cookie", resp.StatusCode, c)
	}
	if resp, _ := b.get("/experiments/orders"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after signing out: %d, want a redirect to sign in", resp.StatusCode)
	}
}

// TestSessionEnds: a session ends when its token is revoked (within the
// cache bound) and when it expires.
func TestSessionEnds(t *testing.T) {
	s := newSecured(t, false)
	signIn := func(token string) *browser {
		b := newBrowser(t, s.url)
		resp, body := b.post("/login", url.Values{"csrf": {b.csrf()}, "token": {token}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", resp.StatusCode, body)
		}
		if resp, _ := b.get("/"); resp.StatusCode != 200 {
			t.Fatalf("page after signing in: %d", resp.StatusCode)
		}
		return b
	}
	revoked, flag := signIn(s.viewer), signIn(flagViewer)
	if err := s.cliTokens(t).Revoke(context.Background(), "ci-viewer"); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(auth.DefaultCacheTTL)
	if resp, _ := revoked.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session of a revoked token: %d, want a redirect to sign in", resp.StatusCode)
	}
	if resp, _ := flag.get("/"); resp.StatusCode != 200 {
		t.Errorf("session of a flag token: %d, want 200", resp.StatusCode)
	}
	s.clock.Advance(DefaultSessionTTL)
	if resp, _ := flag.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session after %v: %d, want a redirect to sign in", DefaultSessionTTL, resp.StatusCode)
	}
}

// TestSessionCookieSecure: the cookie is Secure when the request came over
// TLS through a trusted (loopback or private) proxy, and only then.
func TestSessionCookieSecure(t *testing.T) {
	s := newSecured(t, false)
	b := newBrowser(t, s.url)
	tok := b.csrf()
	resp, _ := b.post("/login", url.Values{"csrf": {tok}, "token": {s.viewer}}, "X-Forwarded-Proto", "https")
	if ck := cookieNamed(resp, sessionCookie); ck == nil || !ck.Secure {
		t.Errorf("behind a TLS-terminating proxy on loopback: cookie %+v, want Secure", ck)
	}
	// From a public address the header is not trusted.
	form := url.Values{"csrf": {tok}, "token": {s.viewer}}
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.RemoteAddr = "203.0.113.7:4242"
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	rec := httptest.NewRecorder()
	s.e.ServeHTTP(rec, req)
	if ck := cookieNamed(rec.Result(), sessionCookie); rec.Code != http.StatusSeeOther || ck == nil || ck.Secure {
		t.Errorf("X-Forwarded-Proto from a public peer: %d, cookie %+v; want a plain cookie", rec.Code, ck)
	}
}

// TestForgedForms: state-changing forms without the right CSRF token, or
// posted from another site, are refused with 403.
func TestForgedForms(t *testing.T) {
	s := newSecured(t, false)
	b := newBrowser(t, s.url)
	tok := b.csrf()
	tests := []struct {
		name   string
		path   string
		form   url.Values
		header []string
	}{
		{"sign-in without a token", "/login", url.Values{"token": {s.operator}}, nil},
		{"sign-in with a wrong token", "/login", url.Values{"token": {s.operator}, "csrf": {"forged-" + tok[7:]}}, nil},
		{"sign-in from another site", "/login", url.Values{"token": {s.operator}, "csrf": {tok}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"sign-in from a sibling subdomain", "/login", url.Values{"token": {s.operator}, "csrf": {tok}}, []string{"Sec-Fetch-Site", "same-site"}},
		{"sign-out without a token", "/logout", url.Values{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := b.post(tt.path, tt.form, tt.header...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%d %s, want 403", resp.StatusCode, body)
			}
			if cookieNamed(resp, sessionCookie) != nil {
				t.Errorf("a forged form set the session cookie")
			}
		})
	}
	// Without the cookie the form's token is worth nothing.
	fresh := newBrowser(t, s.url)
	if resp, _ := fresh.post("/login", url.Values{"token": {s.operator}, "csrf": {tok}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the form token without its cookie: %d, want 403", resp.StatusCode)
	}
	// The same form from this site goes through.
	if resp, body := b.post("/login", url.Values{"token": {s.operator}, "csrf": {tok}}, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin sign-in: %d %s, want 303", resp.StatusCode, body)
	}
}

// TestEmptyCSRFNeverMatches: an empty (or malformed) parity_csrf cookie
// with an empty form field or header never passes for a matching pair — not
// on sign-in, and not on an operator's rollout form riding on a session.
func TestEmptyCSRFNeverMatches(t *testing.T) {
	s := newSecured(t, false)
	b := newBrowser(t, s.url)
	tok := b.csrf()
	if resp, body := b.post("/login", url.Values{"csrf": {tok}, "token": {s.operator}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	u, _ := url.Parse(s.url)
	var session *http.Cookie
	for _, c := range b.jar.Cookies(u) {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after signing in")
	}
	for _, path := range []string{"/login", "/logout", "/experiments/orders/rollout/pause"} {
		for _, cookie := range []string{"", " ", "x", strings.Repeat("!", 32)} {
			for _, via := range []string{"form", "header"} {
				form := url.Values{"token": {s.operator}, "reason": {"forged"}}
				req, _ := http.NewRequest("POST", s.url+path, nil)
				if via == "form" {
					form.Set("csrf", cookie)
				} else {
					req.Header.Set(echo.HeaderXCSRFToken, cookie)
				}
				req.Body = io.NopCloser(strings.NewReader(form.Encode()))
				req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
				req.Header.Set("Cookie", csrfCookie+"="+cookie+"; "+sessionCookie+"="+session.Value)
				resp, err := noRedirects(nil).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("POST %s with parity_csrf=%q and the same %s: %d %s, want 403", path, cookie, via, resp.StatusCode, body)
				}
			}
		}
	}
}

// TestFailedLoginsSlowed: after LoginFreeFailures failures an address is
// locked out for 1s, then 2s, …; while locked out even the right token is
// refused with 429 and Retry-After. Time is the injected clock.
func TestFailedLoginsSlowed(t *testing.T) {
	s := newSecured(t, false)
	b := newBrowser(t, s.url)
	tok := b.csrf()
	try := func(token string) (int, string) {
		resp, _ := b.post("/login", url.Values{"csrf": {tok}, "token": {token}})
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	wrong := "pty_" + strings.Repeat("w", 43)
	for i := range LoginFreeFailures {
		if code, _ := try(wrong); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	if code, _ := try(s.viewer); code != http.StatusSeeOther {
		t.Fatalf("the right token after %d failures: %d, want 303 (they are free)", LoginFreeFailures, code)
	}
	// That success forgot them: five more are free, the sixth locks out.
	for range LoginFreeFailures {
		try(wrong)
	}
	if code, _ := try(wrong); code != http.StatusUnauthorized {
		t.Fatalf("failure %d: %d, want 401", LoginFreeFailures+1, code)
	}
	if code, after := try(s.viewer); code != http.StatusTooManyRequests || after != "1" {
		t.Fatalf("right token while locked out: %d Retry-After %q, want 429 and 1", code, after)
	}
	s.clock.Advance(time.Second)
	if code, _ := try(wrong); code != http.StatusUnauthorized {
		t.Fatalf("after the lockout: %d, want the token checked (401)", code)
	}
	if code, after := try(s.viewer); code != http.StatusTooManyRequests || after != "2" {
		t.Fatalf("second lockout: %d Retry-After %q, want 429 and 2", code, after)
	}
	s.clock.Advance(2 * time.Second)
	if code, _ := try(s.viewer); code != http.StatusSeeOther {
		t.Fatalf("right token after the lockout: %d, want 303", code)
	}
	if n := s.h.auth.limiter.len(); n != 0 {
		t.Errorf("a successful sign-in left %d records", n)
	}
	if !strings.Contains(s.log.String(), "sign-in refused") {
		t.Errorf("failed sign-ins are not logged")
	}
}

func TestLoginLimiter(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	l := newLoginLimiter(clk.Now)
	var delays []time.Duration
	for range LoginFreeFailures + 12 {
		delays = append(delays, l.fail("a"))
	}
	for i, d := range delays {
		want := time.Duration(0)
		if n := i + 1 - LoginFreeFailures; n > 0 {
			want = min(time.Second<<(n-1), LoginMaxDelay)
		}
		if d != want {
			t.Errorf("failure %d: lockout %v, want %v", i+1, d, want)
		}
	}
	if w := l.wait("a"); w != LoginMaxDelay {
		t.Errorf("wait %v, want the cap %v", w, LoginMaxDelay)
	}
	clk.Advance(LoginForget)
	if d := l.fail("a"); d != 0 {
		t.Errorf("failure an hour later: lockout %v, want a fresh start", d)
	}

	l.max = 3
	for _, c := range []string{"b", "c", "d", "e", "f"} {
		l.fail(c)
		if n := l.len(); n > 3 {
			t.Fatalf("%d records, want at most 3", n)
		}
	}

	for ip, want := range map[string]string{
		"192.0.2.1": "192.0.2.1", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "2001:db8:1:2:ffff::1": "2001:db8:1:2::/64", "::ffff:192.0.2.1": "192.0.2.1",
	} {
		if got := clientKey(ip); got != want {
			t.Errorf("clientKey(%s) = %s, want %s", ip, got, want)
		}
	}
}

// TestNoSecretsInLogs: tokens and session cookies never reach the log, at
// any level, whatever happens to the request.
func TestNoSecretsInLogs(t *testing.T) {
	s := newSecured(t, false)
	for _, tok := range []string{s.viewer, s.operator, s.ingest, flagViewer, flagOperator, flagIngest, "pty_" + strings.Repeat("z", 43), "wrong-token-0123456789"} {
		for _, ep := range endpoints {
			call(t, nil, ep.method, s.url+ep.path, tok, ep.body)
		}
		call(t, nil, "GET", s.url+"/api/v1/experiments/orders/segments?window=bad", tok, "") // an error answer
	}
	b := newBrowser(t, s.url)
	csrf := b.csrf()
	b.post("/login", url.Values{"csrf": {csrf}, "token": {"pty_" + strings.Repeat("q", 43)}})
	resp, _ := b.post("/login", url.Values{"csrf": {csrf}, "token": {s.operator}})
	session := cookieNamed(resp, sessionCookie)
	if session == nil {
		t.Fatal("no session")
	}
	b.get("/")
	call(t, b.client, "PUT", s.url+"/api/v1/experiments/orders/rules", "", `{"rules": {}}`) // refused: no CSRF token
	b.post("/logout", url.Values{"csrf": {csrf}})

	logged := s.log.String()
	for _, secret := range []string{s.viewer, s.operator, s.ingest, flagViewer, flagOperator, flagIngest, strings.Repeat("z", 43), "wrong-token-0123456789", strings.Repeat("q", 43), session.Value, csrf} {
		if strings.Contains(logged, secret) {
			t.Errorf("the log contains a secret %.12s…", secret)
		}
	}
	if strings.Contains(logged, "pty_") || strings.Contains(logged, "Bearer") {
		t.Errorf("the log contains a token or an Authorization header")
	}
	for _, want := range []string{"principal=ci-viewer", "principal=release-owner", `principal=operator-token[0]`, "collector: signed in"} {
		if !strings.Contains(logged, want) {
			t.Errorf("the log lacks %q: who did what must still be there", want)
		}
	}
}

// TestEveryRouteHasAccess: each registered route has an access rule, and
// each rule a route, so no endpoint is open by omission.
func TestEveryRouteHasAccess(t *testing.T) {
	s := newSecured(t, false)
	s.e.GET("/metrics", func(c echo.Context) error { return nil }) // registered by Start
	registered := map[string]bool{}
	for _, r := range s.e.Routes() {
		key := r.Method + " " + r.Path
		registered[key] = true
		if _, ok := routeAccess[key]; !ok {
			t.Errorf("route %s has no access rule", key)
		}
	}
	for key := range routeAccess {
		if !registered[key] {
			t.Errorf("access rule for %s, which is no route", key)
		}
	}
	// A route added without a rule is refused, not open.
	s.e.GET("/api/v1/forgotten", func(c echo.Context) error { return c.String(200, "open") })
	if resp, _ := call(t, nil, "GET", s.url+"/api/v1/forgotten", flagOperator, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a route without an access rule: %d, want 403", resp.StatusCode)
	}
}

func TestAnonymousViewersOption(t *testing.T) {
	tests := []struct {
		opts Options
		want bool
	}{
		{Options{Addr: "127.0.0.1:8080"}, true},
		{Options{Addr: "[::1]:8080"}, true},
		{Options{Addr: "localhost:8080"}, true},
		{Options{Addr: "127.0.0.1:8080", ViewerTokens: []string{"v"}}, false},
		{Options{Addr: "0.0.0.0:8080"}, false},
		{Options{Addr: ":8080"}, false},
		{Options{Addr: "10.0.0.5:8080"}, false},
		{Options{Addr: "parity.internal:8080"}, false},
		{Options{Addr: "0.0.0.0:8080", AnonymousViewers: "true"}, true},
		{Options{Addr: "127.0.0.1:8080", AnonymousViewers: "false"}, false},
	}
	for _, tt := range tests {
		if tt.opts.AnonymousViewers == "" {
			tt.opts.AnonymousViewers = AnonymousViewersAuto
		}
		if got, why := tt.opts.anonymousViewers(); got != tt.want || why == "" {
			t.Errorf("%+v: anonymous viewers %v (%s), want %v", tt.opts, got, why, tt.want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/experiments/orders?window=1h": "/experiments/orders?window=1h",
		"":                              "/",
		"https://evil.example/":         "/",
		"//evil.example/":               "/",
		"/\\evil.example/":              "/",
		"/login?next=/x":                "/",
		"experiments":                   "/",
		"/a\r\nSet-Cookie: x=1":         "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecretEqual: an empty secret equals nothing, and every comparison of
// secrets in the collector goes through secretEqual (a comparison written
// elsewhere could forget the empty case).
func TestSecretEqual(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"", "", false}, {"a", "", false}, {"", "a", false}, {"abc", "abc", true}, {"abc", "abd", false}} {
		if got := secretEqual([]byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("secretEqual(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if (strings.Contains(line, "ConstantTimeCompare") || strings.Contains(line, "hmac.Equal")) &&
				!strings.Contains(line, "return len(a) > 0 && len(b) > 0 && subtle.ConstantTimeCompare(a, b) == 1") {
				t.Errorf("%s:%d compares secrets without secretEqual: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}
