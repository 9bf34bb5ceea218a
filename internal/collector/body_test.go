package collector

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestNotJSONBodiesRefused: every route that takes a JSON body answers a
// body that is not JSON at all with 400, as docs/api.md promises — never
// 200 with the body taken as something, never 500.
func TestNotJSONBodiesRefused(t *testing.T) {
	s := newSecured(t, false)
	param := regexp.MustCompile(`:[a-z]+`)
	var checked int
	for _, r := range s.e.Routes() {
		if r.Method != http.MethodPost && r.Method != http.MethodPut || r.Path == pathLogin || r.Path == pathLogout ||
			!strings.HasPrefix(r.Path, "/api/") && !strings.HasPrefix(r.Path, pathOFREP) {
			continue
		}
		target := param.ReplaceAllStringFunc(r.Path, func(p string) string {
			if p == ":action" {
				return "pause"
			}
			return "orders"
		})
		token := flagOperator
		if r.Path == "/api/v1/pairs" {
			token = flagIngest
		}
		for _, body := range []string{"hello world", "hello\nworld\n", "\x00\x01", "{not json", "[1, 2", "{} trailing"} {
			req := httptest.NewRequest(r.Method, target, strings.NewReader(body))
			req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			req.Header.Set(echo.HeaderAuthorization, "Bearer "+token)
			rec := httptest.NewRecorder()
			s.e.ServeHTTP(rec, req)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("%s %s with body %q: %d %.200s, want 400", r.Method, target, body, rec.Code, rec.Body.String())
			}
			checked++
		}
	}
	if checked < 40 {
		t.Errorf("only %d requests: are the JSON routes registered?", checked)
	}
}
