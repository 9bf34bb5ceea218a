package collector

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/controller"
)

// Request parameters have one way in. [checkParams] refuses, for every
// route, a query, path or form parameter that is no usable text; handlers
// then read parameters only through the functions below (pathName, pathID,
// queryText, queryName, queryInt, queryWindow, formText, …), which parse
// them and refuse bad values with a 400 that names the parameter. No error
// quotes a parameter's value: errors reach the request log, and query values
// may carry user keys or secrets. TestParamsReadInOneWay keeps handlers from
// reading parameters any other way.

// Limits on parameters.
const (
	// maxParamBytes bounds every query, path and form value.
	maxParamBytes = 1024
	// maxParams bounds the query (or form) parameters of one request.
	maxParams = 64
	// maxFormBytes bounds a url-encoded form body, read before any route's
	// own body limit.
	maxFormBytes = 64 << 10
)

// ctxParamsBad marks a request refused by checkParams: the request log
// then shows the route pattern instead of the path.
const ctxParamsBad = "parity.params_bad"

func badParam(name, problem string) error {
	return echo.NewHTTPError(http.StatusBadRequest, "parameter "+name+": "+problem)
}

// checkParams is middleware that refuses a request any of whose query, path
// or form parameters is not text a handler can use: see [paramProblem].
// It runs before authentication, so every route — and every parameter,
// whether or not its handler reads it — is covered.
func checkParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := checkRequestParams(c); err != nil {
			c.Set(ctxParamsBad, true)
			return err
		}
		return next(c)
	}
}

func checkRequestParams(c echo.Context) error {
	r := c.Request()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "query string: not valid URL encoding")
	}
	if err := checkValues("query", q); err != nil {
		return err
	}
	for i, name := range c.ParamNames() {
		if i < len(c.ParamValues()) {
			if p := paramProblem(c.ParamValues()[i]); p != "" {
				return badParam(name, p)
			}
		}
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		if ct := r.Header.Get(echo.HeaderContentType); strings.HasPrefix(ct, echo.MIMEApplicationForm) {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, "form: not a valid url-encoded form of at most 64 KiB")
			}
			if err := checkValues("form", r.PostForm); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkValues(where string, vs url.Values) error {
	if len(vs) > maxParams {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s: more than %d parameters", where, maxParams))
	}
	for name, values := range vs {
		if paramProblem(name) != "" || len(name) > 64 {
			return echo.NewHTTPError(http.StatusBadRequest, where+": a parameter name is not valid")
		}
		if len(values) > maxParams {
			return badParam(name, fmt.Sprintf("repeated more than %d times", maxParams))
		}
		for _, v := range values {
			if p := paramProblem(v); p != "" {
				return badParam(name, p)
			}
		}
	}
	return nil
}

// paramProblem says why v is no usable parameter value, or "": NUL and
// other control bytes (tab aside), invalid UTF-8, more than maxParamBytes.
func paramProblem(v string) string {
	if len(v) > maxParamBytes {
		return fmt.Sprintf("longer than %d bytes", maxParamBytes)
	}
	if !utf8.ValidString(v) {
		return "not valid UTF-8"
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == 0 {
			return "contains a NUL byte"
		} else if c < 0x20 && c != '\t' || c == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}

// --- reading parameters -----------------------------------------------------

// queryText returns query parameter name as it is ("" when absent); at most
// max bytes.
func queryText(c echo.Context, name string, max int) (string, error) {
	v := c.QueryParam(name)
	if len(v) > max {
		return "", badParam(name, fmt.Sprintf("longer than %d bytes", max))
	}
	return v, nil
}

// queryList returns every value of the repeatable query parameter name.
func queryList(c echo.Context, name string) []string { return c.QueryParams()[name] }

// queryHas reports whether query parameter name is present and not empty.
func queryHas(c echo.Context, name string) bool { return c.QueryParam(name) != "" }

// queryEnum returns query parameter name, which must be one of allowed
// (or empty, giving def).
func queryEnum(c echo.Context, name, def string, allowed ...string) (string, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", badParam(name, "must be one of "+strings.Join(allowed, ", "))
}

// queryInt returns query parameter name as a whole number from min to max,
// or def when absent.
func queryInt(c echo.Context, name string, def, min, max int64) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		return 0, badParam(name, fmt.Sprintf("must be a whole number from %d to %d", min, max))
	}
	return n, nil
}

// queryFloat returns query parameter name as a number that is not
// negative; ok is false when absent.
func queryFloat(c echo.Context, name string) (f float64, ok bool, err error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, false, nil
	}
	f, err = strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f != f {
		return 0, false, badParam(name, "must be a number, not negative")
	}
	return f, true, nil
}

// queryBool returns query parameter name as true or false; ok is false when
// absent.
func queryBool(c echo.Context, name string) (b, ok bool, err error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, false, nil
	}
	b, err = strconv.ParseBool(v)
	if err != nil {
		return false, false, badParam(name, "must be true or false")
	}
	return b, true, nil
}

// queryRate returns query parameter name as a rate (see parseRate); ok is
// false when absent.
func queryRate(c echo.Context, name string) (r float64, ok bool, err error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, false, nil
	}
	if r, err = parseRate(v); err != nil {
		return 0, false, badParam(name, err.Error())
	}
	return r, true, nil
}

// queryTime returns query parameter name as a past RFC 3339 time; zero
// when absent.
func queryTime(c echo.Context, name string) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || t.After(time.Now()) {
		return time.Time{}, badParam(name, "must be a past RFC 3339 time")
	}
	return t, nil
}

// windowParam parses ?window=: a duration such as 15m, 24h or 7d, or "all".
// Empty means def.
func windowParam(c echo.Context, def string) (string, time.Time, error) {
	w := c.QueryParam("window")
	if w == "" {
		w = def
	}
	if w == "all" {
		return w, time.Time{}, nil
	}
	d, err := parseWindow(w)
	if err != nil {
		return "", time.Time{}, badParam("window", err.Error())
	}
	return w, time.Now().Add(-d), nil
}

// parseWindow reads a duration such as 15m, 24h or 7d, from 1m to 90d
// (controller.ParseWindow); unlike that function's, its errors do not quote
// w.
func parseWindow(w string) (time.Duration, error) {
	d, err := controller.ParseWindow(w)
	if err != nil {
		return 0, errors.New("must be a duration like 15m, 24h or 7d (or all), between 1m and 90d")
	}
	return d, nil
}

// limitParam returns ?limit= from 1 to max, or def.
func limitParam(c echo.Context, def, max int) (int, error) {
	n, err := queryInt(c, "limit", int64(def), 1, int64(max))
	return int(n), err
}

// nameParam returns path parameter param, a name (see validName).
func nameParam(c echo.Context, param string) (string, error) {
	v := c.Param(param)
	if !validName(v) {
		return "", badParam(param, "not a valid name (1 to 64 letters, digits, _ or -)")
	}
	return v, nil
}

// pathText returns path parameter param as it is (checked by checkParams).
func pathText(c echo.Context, param string) string { return c.Param(param) }

// optionalName returns query parameter param, a name, or "".
func optionalName(c echo.Context, param string) (string, error) {
	v := c.QueryParam(param)
	if v != "" && !validName(v) {
		return "", badParam(param, "not a valid name (1 to 64 letters, digits, _ or -)")
	}
	return v, nil
}

// optionalOperation returns query parameter operation: a name, or the
// operation of a reconciliation sweep, "reconcile:<name>"; "" when absent.
func optionalOperation(c echo.Context) (string, error) {
	v := c.QueryParam("operation")
	if v != "" && !validName(strings.TrimPrefix(v, "reconcile:")) {
		return "", badParam("operation", "not a valid operation (a name, or reconcile: and a name)")
	}
	return v, nil
}

// formFloat returns form field name as a number; ok is false when absent.
func formFloat(c echo.Context, name string) (f float64, ok bool, err error) {
	v := c.FormValue(name)
	if v == "" {
		return 0, false, nil
	}
	if f, err = strconv.ParseFloat(v, 64); err != nil {
		return 0, false, badParam(name, "must be a number")
	}
	return f, true, nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// idParam returns path parameter id, a sample id.
func idParam(c echo.Context) (int64, error) { return pathInt(c, "id", "a sample id") }

// pathInt returns path parameter param, a positive whole number: what it
// names (for the error).
func pathInt(c echo.Context, param, what string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(param), 10, 64)
	if err != nil || id < 1 {
		return 0, badParam(param, "not "+what+" (a positive whole number)")
	}
	return id, nil
}

// formText returns form field name as it is ("" when absent); at most max
// bytes.
func formText(c echo.Context, name string, max int) (string, error) {
	v := c.FormValue(name)
	if len(v) > max {
		return "", badParam(name, fmt.Sprintf("longer than %d bytes", max))
	}
	return v, nil
}

// formInt returns form field name as a whole number; nil when absent.
func formInt(c echo.Context, name string) (*int, error) {
	v := c.FormValue(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, badParam(name, "must be a whole number")
	}
	return &n, nil
}

// parseQuery parses the request's query once, before goroutines that read
// parameters of the same request at once: Echo parses it on first use and
// keeps it in the context, which is not safe to do concurrently.
func parseQuery(c echo.Context) {
	_ = c.QueryParams()
}
