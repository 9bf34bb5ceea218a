package collector

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// withHTTP rebuilds s's server with the given HTTP options and an OFREP
// limiter on s's clock.
func withHTTP(t *testing.T, s *securedServer, o HTTPOptions) *echo.Echo {
	t.Helper()
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	s.h.http = o
	s.h.ofrepLimit = newOFREPLimiter(o.OFREPRate, o.OFREPBurst, s.clock.Now)
	e, err := newEcho(s.h)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func serve(e *echo.Echo, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// TestHSTS: Strict-Transport-Security on requests that came over TLS, and
// on ones a trusted proxy says came over TLS; never on plain HTTP, and a
// forwarded header is believed only when the proxy is trusted.
func TestHSTS(t *testing.T) {
	s := newSecured(t, true)
	for _, tt := range []struct {
		name      string
		trust     bool
		tls       bool
		forwarded string
		want      bool
	}{
		{"plain HTTP", false, false, "", false},
		{"direct TLS", false, true, "", true},
		{"forwarded https, proxy not trusted", false, false, "https", false},
		{"forwarded https, proxy trusted", true, false, "https", true},
		{"forwarded http, proxy trusted", true, false, "http", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := withHTTP(t, s, HTTPOptions{TrustForwardedProto: tt.trust})
			req := httptest.NewRequest("GET", "/healthz", nil)
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			if tt.forwarded != "" {
				req.Header.Set(echo.HeaderXForwardedProto, tt.forwarded)
			}
			got := serve(e, req).Header().Get(echo.HeaderStrictTransportSecurity)
			if (got != "") != tt.want || tt.want && got != "max-age=31536000" {
				t.Errorf("Strict-Transport-Security = %q, want it %v", got, tt.want)
			}
		})
	}
}

// TestOFREPRateLimit: past its rate a client gets 429 with Retry-After in
// OFREP's error shape; other clients are not affected; the bucket refills
// with time (the injected clock); other routes are not limited.
func TestOFREPRateLimit(t *testing.T) {
	s := newSecured(t, false)
	e := withHTTP(t, s, HTTPOptions{OFREPRate: 2, OFREPBurst: 3})
	eval := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/ofrep/v1/evaluate/flags/orders", strings.NewReader(`{"context":{"targetingKey":"u1"}}`))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+token)
		return serve(e, req)
	}
	for i := range 3 {
		if rec := eval(flagIngest); rec.Code == http.StatusTooManyRequests {
			t.Fatalf("evaluation %d within the burst: 429", i+1)
		}
	}
	rec := eval(flagIngest)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get(echo.HeaderRetryAfter) != "1" || !strings.Contains(rec.Body.String(), `"errorCode":"GENERAL"`) {
		t.Fatalf("past the burst: %d, Retry-After %q, %s; want 429, 1, OFREP's error shape", rec.Code, rec.Header().Get(echo.HeaderRetryAfter), rec.Body)
	}
	if rec := eval(flagViewer); rec.Code == http.StatusTooManyRequests {
		t.Error("another client was limited too")
	}
	for range 20 { // other routes are not limited
		req := httptest.NewRequest("GET", "/api/v1/experiments", nil)
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+flagViewer)
		if rec := serve(e, req); rec.Code != http.StatusOK {
			t.Fatalf("GET /api/v1/experiments: %d", rec.Code)
		}
	}
	s.clock.Advance(time.Second) // two more
	for i := range 2 {
		if rec := eval(flagIngest); rec.Code == http.StatusTooManyRequests {
			t.Errorf("evaluation %d after a second: 429", i+1)
		}
	}
	if rec := eval(flagIngest); rec.Code != http.StatusTooManyRequests {
		t.Errorf("third evaluation after a second: %d, want 429", rec.Code)
	}
	if got := newOFREPLimiter(-1, 0, nil); got != nil || got.wait("x") != 0 {
		t.Error("a negative rate must turn the limit off")
	}
}

// TestOFREPCORS: no CORS headers by default; with allowed origins, a
// preflight from one is answered without credentials, and others get
// nothing; routes other than OFREP never answer CORS.
func TestOFREPCORS(t *testing.T) {
	s := newSecured(t, false)
	preflight := func(e *echo.Echo, path, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("OPTIONS", path, nil)
		req.Header.Set(echo.HeaderOrigin, origin)
		req.Header.Set(echo.HeaderAccessControlRequestMethod, "POST")
		req.Header.Set(echo.HeaderAccessControlRequestHeaders, "authorization,content-type")
		return serve(e, req)
	}
	off := withHTTP(t, s, HTTPOptions{})
	if got := preflight(off, "/ofrep/v1/evaluate/flags", "https://app.example.com").Header().Get(echo.HeaderAccessControlAllowOrigin); got != "" {
		t.Errorf("without origins configured: Access-Control-Allow-Origin %q, want none", got)
	}
	on := withHTTP(t, s, HTTPOptions{OFREPCORSOrigins: []string{"https://app.example.com"}})
	rec := preflight(on, "/ofrep/v1/evaluate/flags", "https://app.example.com")
	if rec.Code != http.StatusNoContent || rec.Header().Get(echo.HeaderAccessControlAllowOrigin) != "https://app.example.com" ||
		!strings.Contains(strings.ToLower(rec.Header().Get(echo.HeaderAccessControlAllowHeaders)), "authorization") {
		t.Errorf("preflight from an allowed origin: %d %v", rec.Code, rec.Header())
	}
	if got := preflight(on, "/ofrep/v1/evaluate/flags", "https://evil.example").Header().Get(echo.HeaderAccessControlAllowOrigin); got != "" {
		t.Errorf("preflight from another origin: Access-Control-Allow-Origin %q", got)
	}
	if got := preflight(on, "/api/v1/experiments/orders/rules", "https://app.example.com").Header().Get(echo.HeaderAccessControlAllowOrigin); got != "" {
		t.Errorf("a non-OFREP route answered CORS: %q", got)
	}
	for _, bad := range [][]string{{"app.example.com"}, {"https://app.example.com/"}} {
		o := HTTPOptions{OFREPCORSOrigins: bad}
		if err := o.setDefaults(); err == nil {
			t.Errorf("origins %q accepted", bad)
		}
	}
}

// TestHeadersBounded: the collector's server refuses headers over
// MaxHeaderBytes (Go's default would read a megabyte of them).
func TestHeadersBounded(t *testing.T) {
	h := newRolloutHarness(t)
	req, _ := http.NewRequest("GET", h.app.URL()+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 2*MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("%d bytes of headers: %d, want 431", 2*MaxHeaderBytes, resp.StatusCode)
	}
	req.Header.Set("X-Padding", strings.Repeat("a", MaxHeaderBytes/2))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%d bytes of headers: %d, want 200", MaxHeaderBytes/2, resp.StatusCode)
	}
}
