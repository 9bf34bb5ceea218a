package collector

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// queryParamNames are the query parameters any handler reads, and one no
// handler reads: each is sent hostile to every route.
var queryParamNames = []string{"window", "limit", "operation", "segment", "attr", "sort", "dir", "live", "next",
	"max_rate", "max_error_rate", "max_p99_ratio", "alpha", "min_pairs", "per_segment", "since", "unknown"}

// hostile are values no parameter accepts, URL-encoded; each carries the
// marker SECRET, which must appear in no log and no error.
var hostile = map[string]string{
	"NUL":           "SECRET%00",
	"invalid UTF-8": "SECRET%FF%FE",
	"control":       "SECRET%0D%0Ainjected",
	"over-long":     strings.Repeat("SECRET", 200),
}

// TestEveryRouteRefusesHostileParams iterates over the route table: every
// path parameter, every query parameter and every form field of every route,
// given a NUL byte, invalid UTF-8, a control character or an over-long
// value, answers 400 naming the parameter — never 500 — and neither the
// answer nor the log contains anything of the value.
func TestEveryRouteRefusesHostileParams(t *testing.T) {
	s := newSecured(t, false)
	s.e.GET("/metrics", func(c echo.Context) error { return nil }) // registered by Start
	routes := s.e.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes: is the route table complete?", len(routes))
	}
	param := regexp.MustCompile(`:[a-z]+|\*`)
	fill := func(pattern, target, value string) string {
		return param.ReplaceAllStringFunc(pattern, func(p string) string {
			if p == target {
				return value
			}
			switch p {
			case ":id":
				return "1"
			case ":action":
				return "pause"
			case "*":
				return "style.css"
			}
			return "orders"
		})
	}
	send := func(t *testing.T, method, target, form, wantParam string) {
		t.Helper()
		req := httptest.NewRequest(method, target, strings.NewReader(form))
		if form != "" {
			req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		}
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+flagOperator)
		rec := httptest.NewRecorder()
		s.e.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != http.StatusBadRequest || !strings.Contains(body, wantParam) {
			t.Errorf("%s %.120s: %d %.200s, want 400 naming %s", method, target, rec.Code, body, wantParam)
		}
		if strings.Contains(body, "SECRET") {
			t.Errorf("%s %.120s: the answer quotes the value: %.200s", method, target, body)
		}
	}
	var sent int
	for _, r := range routes {
		for _, p := range param.FindAllString(r.Path, -1) {
			for _, v := range hostile {
				name := strings.TrimPrefix(p, ":")
				if p == "*" {
					name = "parameter"
				}
				send(t, r.Method, fill(r.Path, p, v), "", name)
				sent++
			}
		}
		base := fill(r.Path, "", "")
		for _, q := range queryParamNames {
			for _, v := range hostile {
				send(t, r.Method, base+"?"+q+"="+v, "", "parameter "+q)
				sent++
			}
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			for _, f := range []string{"csrf", "token", "next", "step", "reason", "unknown"} {
				for _, v := range hostile {
					send(t, r.Method, base, f+"="+v, "parameter "+f)
					sent++
				}
			}
		}
	}
	// Broken encodings and parameter names are refused too.
	send(t, "GET", "/api/v1/experiments?limit=%zz", "", "query string")
	send(t, "GET", "/api/v1/experiments?SECRET%00=1", "", "parameter name")
	logged := s.log.String()
	if strings.Contains(logged, "SECRET") {
		i := strings.Index(logged, "SECRET")
		t.Errorf("the log contains a parameter value: …%s…", logged[max(0, i-200):min(len(logged), i+50)])
	}
	if !strings.Contains(logged, "status=400") {
		t.Error("the refusals are not in the request log")
	}
	t.Logf("%d hostile requests over %d routes", sent, len(routes))
}

// TestBadValuesNeverLogged: values that are text but not what a parameter
// takes (?limit=abcSECRET) answer 400 naming the parameter, and neither the
// answer nor the log quotes them; a route that ignores a parameter never
// answers 500 for it.
func TestBadValuesNeverLogged(t *testing.T) {
	s := newSecured(t, false)
	for _, tt := range []struct{ target, param string }{
		{"/api/v1/experiments/orders/samples?limit=abcSECRET", "limit"},
		{"/api/v1/dead-letters?limit=-1SECRET", "limit"},
		{"/api/v1/experiments/orders/segments?window=SECRET", "window"},
		{"/api/v1/experiments/orders/segments?operation=SECRET.x", "operation"},
		{"/api/v1/experiments/orders/gate?max_rate=SECRET", "max_rate"},
		{"/api/v1/experiments/orders/gate?alpha=SECRET", "alpha"},
		{"/api/v1/experiments/orders/gate?min_pairs=SECRET", "min_pairs"},
		{"/api/v1/experiments/orders/gate?per_segment=SECRET", "per_segment"},
		{"/api/v1/experiments/orders/gate?since=SECRET", "since"},
		{"/api/v1/experiments/orders/rollout/events?limit=SECRET", "limit"},
		{"/experiments/orders?attr=SECRET", "attr"},
		{"/experiments/orders?sort=SECRET", "sort"},
		{"/experiments/orders?sort=rate&dir=SECRET", "dir"},
		{"/experiments/orders?live=SECRET", "live"},
		{"/api/v1/samples/SECRET", "id"},
		{"/api/v1/experiments/SECRET.x/segments", "name"},
	} {
		code, body := call(t, nil, "GET", s.url+tt.target, flagOperator, "")
		if code.StatusCode != http.StatusBadRequest || !strings.Contains(body, "parameter "+tt.param) || strings.Contains(body, "SECRET") {
			t.Errorf("GET %s: %d %s, want 400 naming %s without its value", tt.target, code.StatusCode, body, tt.param)
		}
	}
	for _, r := range s.e.Routes() {
		if strings.Contains(r.Path, "*") {
			continue
		}
		target := regexp.MustCompile(`:[a-z]+`).ReplaceAllString(r.Path, "orders")
		q := url.Values{}
		for _, n := range queryParamNames {
			q.Set(n, "abcSECRET")
		}
		resp, _ := call(t, nil, r.Method, s.url+target+"?"+q.Encode(), flagOperator, "")
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s with bad values: %d", r.Method, target, resp.StatusCode)
		}
	}
	if logged := s.log.String(); strings.Contains(logged, "SECRET") {
		i := strings.Index(logged, "SECRET")
		t.Errorf("the log contains a parameter value: …%s…", logged[max(0, i-200):min(len(logged), i+50)])
	}
}

// TestParamsReadInOneWay: handlers read request parameters only through
// params.go, so no parameter escapes its checks.
func TestParamsReadInOneWay(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	direct := regexp.MustCompile(`\.(QueryParam|QueryParams|Param|FormValue|FormParams|Bind|QueryString)\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "params.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if direct.MatchString(line) {
				t.Errorf("%s:%d reads a parameter directly; use the functions in params.go: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}
