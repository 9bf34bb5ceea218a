package collector

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/auth"
)

// Sign-in throttling, per client address (an IPv6 client is its /64).
const (
	// LoginFreeFailures failed sign-ins in a row cost nothing.
	LoginFreeFailures = 5
	// Each further failure locks the address out for LoginBaseDelay,
	// doubling with every failure (1s, 2s, 4s, …) up to LoginMaxDelay. While
	// locked out, sign-ins are refused with 429 without looking at the token.
	LoginBaseDelay = time.Second
	LoginMaxDelay  = 15 * time.Minute
	// LoginForget is how long after its last failure an address starts
	// afresh. A successful sign-in starts it afresh at once.
	LoginForget = time.Hour
	// LoginMaxClients bounds the addresses remembered (about 2 MB at most);
	// when full, the expired go first, then arbitrary ones.
	LoginMaxClients = 10_000
)

// loginLimiter slows down guessing tokens at the sign-in form.
type loginLimiter struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*loginRecord
	max int
}

type loginRecord struct {
	failures int
	until    time.Time // locked out before this
	last     time.Time // last failure
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, m: map[string]*loginRecord{}, max: LoginMaxClients}
}

// wait returns how long the client must wait before it may try again; 0 when
// it may try now.
func (l *loginLimiter) wait(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.m[client]
	if r == nil {
		return 0
	}
	return max(r.until.Sub(l.now()), 0)
}

// fail records a failed sign-in and returns the lockout it causes.
func (l *loginLimiter) fail(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.m[client]
	if r != nil && now.Sub(r.last) >= LoginForget && !now.Before(r.until) {
		r = nil // forgotten
	}
	if r == nil {
		if len(l.m) >= l.max {
			l.evict(now)
		}
		r = &loginRecord{}
		l.m[client] = r
	}
	r.failures++
	r.last = now
	var d time.Duration
	if n := r.failures - LoginFreeFailures; n > 0 {
		d = LoginMaxDelay
		if n <= 20 { // beyond, the shift would overflow long after the cap
			d = min(LoginBaseDelay<<(n-1), LoginMaxDelay)
		}
		r.until = now.Add(d)
	}
	return d
}

// succeed forgets the client's failures.
func (l *loginLimiter) succeed(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, client)
}

// evict makes room: forgotten records first, then any.
func (l *loginLimiter) evict(now time.Time) {
	for k, r := range l.m {
		if now.Sub(r.last) >= LoginForget && !now.Before(r.until) {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < l.max {
			return
		}
		delete(l.m, k)
	}
}

func (l *loginLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// clientKey is the address sign-ins are counted by: the peer's IP (never a
// forwarded header), an IPv6 address by its /64, which one client usually
// holds whole.
func clientKey(ip string) string {
	addr := net.ParseIP(ip)
	if addr == nil {
		return ip
	}
	if addr.To4() != nil {
		return addr.String()
	}
	return addr.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// --- handlers ---------------------------------------------------------------

func (s *handlers) loginPage(c echo.Context) error {
	next, err := queryText(c, "next", maxParamBytes)
	if err != nil {
		return err
	}
	return s.renderLogin(c, http.StatusOK, safeNext(next), "")
}

func (s *handlers) renderLogin(c echo.Context, code int, next, problem string) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.Render(code, "login.html", map[string]any{
		"Title": "Sign in", "Next": next, "Problem": problem, "AnonymousViewers": s.auth.anonymous,
	})
}

// login checks a viewer or operator token from the form and opens a session.
func (s *handlers) login(c echo.Context) error {
	a := s.auth
	client := clientKey(c.RealIP())
	next, err := formText(c, "next", maxParamBytes)
	if err != nil {
		return err
	}
	next = safeNext(next)
	if d := a.limiter.wait(client); d > 0 {
		secs := int((d + time.Second - 1) / time.Second)
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(secs))
		return s.renderLogin(c, http.StatusTooManyRequests, next,
			fmt.Sprintf("Too many failed sign-ins from your address: try again in %d s.", secs))
	}
	token, err := formText(c, "token", 256)
	if err != nil {
		return err
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return s.renderLogin(c, http.StatusBadRequest, next, "Paste a viewer or operator token.")
	}
	p, err := a.verify(c.Request().Context(), token)
	if errors.Is(err, auth.ErrInvalidToken) {
		d := a.limiter.fail(client)
		s.log.Warn("collector: sign-in refused", "client", client, "lockout", d)
		return s.renderLogin(c, http.StatusUnauthorized, next, "That token is not valid: unknown or revoked.")
	}
	if err != nil {
		return err
	}
	if !p.Role.Allows(auth.RoleViewer) {
		return s.renderLogin(c, http.StatusForbidden, next, "An "+string(p.Role)+" token cannot sign in: use a viewer or operator token.")
	}
	a.limiter.succeed(client)
	a.setSession(c, p)
	s.log.Info("collector: signed in", "principal", p.Name, "role", p.Role, "client", client)
	return c.Redirect(http.StatusSeeOther, next)
}

// logout ends the session in this browser.
func (s *handlers) logout(c echo.Context) error {
	s.auth.setSession(c, auth.Principal{})
	return c.Redirect(http.StatusSeeOther, "/")
}

// safeNext returns next when it is a path on this site, else "/": sign-in
// must not redirect elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\x00\r\n\t") || len(next) > 2048 {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	if strings.HasPrefix(u.Path, pathLogin) {
		return "/"
	}
	return next
}
