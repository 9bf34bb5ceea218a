package collector

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// HTTPOptions configure the collector's HTTP hardening beyond access
// control: HSTS, and OFREP's rate limit and CORS. The zero value is safe:
// HSTS only over direct TLS, the default rate limit, no CORS.
type HTTPOptions struct {
	// TrustForwardedProto says the collector is behind a TLS-terminating
	// proxy that sets X-Forwarded-Proto: a request saying "https" is then
	// answered with Strict-Transport-Security. Off by default: anyone can
	// send the header, and HSTS over plain HTTP would lock browsers out.
	TrustForwardedProto bool
	// OFREPRate is the OFREP evaluations a client (a token, or an address
	// without one) may make per second, on average. Defaults to
	// DefaultOFREPRate; negative turns the limit off. Past it, OFREP
	// answers 429 with Retry-After.
	OFREPRate float64
	// OFREPBurst is how many evaluations a client may make at once.
	// Defaults to twice OFREPRate (at least 1).
	OFREPBurst int
	// OFREPCORSOrigins are the origins (https://app.example.com) whose
	// browser code may call OFREP, or "*" for any. None by default: browsers
	// refuse cross-origin OFREP calls.
	OFREPCORSOrigins []string
}

// Defaults and limits of [HTTPOptions].
const (
	DefaultOFREPRate = 1000
	// HSTSMaxAge is the max-age of Strict-Transport-Security: one year.
	HSTSMaxAge = 365 * 24 * time.Hour
	// maxRateClients bounds the clients the OFREP limiter remembers.
	maxRateClients = 10000
)

func (o *HTTPOptions) setDefaults() error {
	if o.OFREPRate == 0 {
		o.OFREPRate = DefaultOFREPRate
	}
	if o.OFREPBurst < 0 || math.IsNaN(o.OFREPRate) || math.IsInf(o.OFREPRate, 0) {
		return errInvalidHTTP("OFREPBurst or OFREPRate: must be a finite rate and a burst of at least 0")
	}
	if o.OFREPBurst == 0 {
		o.OFREPBurst = max(1, int(2*o.OFREPRate))
	}
	for _, origin := range o.OFREPCORSOrigins {
		if origin != "*" && !(strings.HasPrefix(origin, "https://") || strings.HasPrefix(origin, "http://")) || strings.HasSuffix(origin, "/") {
			return errInvalidHTTP("OFREPCORSOrigins: each must be * or scheme://host[:port] without a path")
		}
	}
	return nil
}

type httpOptionError string

func (e httpOptionError) Error() string { return "collector: invalid option HTTP." + string(e) }

func errInvalidHTTP(msg string) error { return httpOptionError(msg) }

// hsts sends Strict-Transport-Security on responses to requests that came
// over TLS: directly, or through a proxy that says so when trusted.
func hsts(trustForwarded bool) echo.MiddlewareFunc {
	value := "max-age=" + strconv.Itoa(int(HSTSMaxAge/time.Second))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.TLS != nil || trustForwarded && strings.EqualFold(r.Header.Get(echo.HeaderXForwardedProto), "https") {
				c.Response().Header().Set(echo.HeaderStrictTransportSecurity, value)
			}
			return next(c)
		}
	}
}

// ofrepCORS answers browsers' CORS requests to OFREP from the allowed
// origins; with none, it adds nothing and browsers refuse cross-origin
// calls. It runs before authentication, so a preflight (which carries no
// credentials) is answered.
func ofrepCORS(origins []string) echo.MiddlewareFunc {
	if len(origins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper:       func(c echo.Context) bool { return !strings.HasPrefix(c.Request().URL.Path, pathOFREP) },
		AllowOrigins:  origins,
		AllowMethods:  []string{http.MethodGet, http.MethodPost},
		AllowHeaders:  []string{echo.HeaderAuthorization, headerAPIKey, echo.HeaderContentType, "If-None-Match"},
		ExposeHeaders: []string{"ETag", echo.HeaderRetryAfter},
		MaxAge:        600,
	})
}

// ofrepLimiter bounds each client's OFREP evaluations with a token bucket.
// It remembers at most maxRateClients clients; when full it forgets them
// all, which at worst lets each client start afresh.
type ofrepLimiter struct {
	rate    rate.Limit
	burst   int
	now     func() time.Time
	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func newOFREPLimiter(perSecond float64, burst int, now func() time.Time) *ofrepLimiter {
	if perSecond < 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &ofrepLimiter{rate: rate.Limit(perSecond), burst: burst, now: now, clients: map[string]*rate.Limiter{}}
}

// wait returns 0 when client may evaluate now, else how long until it may.
func (l *ofrepLimiter) wait(client string) time.Duration {
	if l == nil {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxRateClients {
			clear(l.clients)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.clients[client] = lim
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// limit is middleware for the OFREP routes: past the client's rate, 429
// with Retry-After in whole seconds (at least 1), in OFREP's error shape.
func (l *ofrepLimiter) limit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !strings.HasPrefix(c.Request().URL.Path, pathOFREP) {
			return next(c)
		}
		client := "addr:" + clientKey(c.RealIP())
		if name := principalName(c); name != "" && name != "anonymous" {
			client = "token:" + name
		}
		if d := l.wait(client); d > 0 {
			secs := int((d + time.Second - 1) / time.Second)
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(max(1, secs)))
			return c.JSON(http.StatusTooManyRequests, map[string]string{
				"errorCode": ofrepGeneral, "errorDetails": "too many evaluations from this client: retry after " + strconv.Itoa(max(1, secs)) + "s",
			})
		}
		return next(c)
	}
}
