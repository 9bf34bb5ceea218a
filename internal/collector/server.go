package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/report"
	"github.com/parityhq/parity/pkg/segment"
	"github.com/parityhq/parity/web"
)

// Reader is what the dashboard and the API read, and the few settings they
// save (rules, redaction, gate). Rollouts change only through the
// controller, which declares what it needs itself ([controller.Store]).
// *store.Store satisfies both.
type Reader interface {
	Experiments(ctx context.Context) ([]store.Experiment, error)
	ExperimentPage(ctx context.Context, q store.ExperimentQuery) ([]store.Experiment, int, int, error)
	SegmentsOf(ctx context.Context, names []string, q store.SegmentQuery) (map[string][]store.SegmentCount, error)
	GateSpecsOf(ctx context.Context, names []string) (map[string]store.GateSpec, error)
	Operations(ctx context.Context, experiment string) ([]string, error)
	Segments(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.SegmentCount, error)
	Samples(ctx context.Context, experiment string, q store.SampleQuery) ([]store.Sample, error)
	Sample(ctx context.Context, id int64) (store.Sample, error)
	DeadLetters(ctx context.Context, limit int) ([]store.DeadLetter, error)
	DeadLetterCount(ctx context.Context) (int64, error)
	Signatures(ctx context.Context, experiment string, q store.SignatureQuery) ([]store.SignatureSummary, error)
	PatternStats(ctx context.Context, experiment string, since time.Time) (map[string]int64, []store.PatternStat, error)
	Rules(ctx context.Context, experiment string) (store.Rules, error)
	RulesHistory(ctx context.Context, experiment string, limit int) ([]store.Rules, error)
	SaveRules(ctx context.Context, experiment string, rules json.RawMessage, author, reason string) (store.Rules, error)
	Latencies(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.LatencyRow, error)
	Series(ctx context.Context, experiment string, q store.SegmentQuery, step time.Duration) ([]store.SeriesPoint, error)
	Variants(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.VariantCount, error)
	OverviewOf(ctx context.Context, names []string, since time.Time, step time.Duration) (map[string][]store.SeriesPoint, error)
	GateSpec(ctx context.Context, experiment string) (store.GateSpec, error)
	Anchor(ctx context.Context, experiment, name string, at time.Time) (time.Time, error)
	Minutes(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.MinuteCount, error)
	Redaction(ctx context.Context, experiment string) (store.Redaction, error)
	SaveRedaction(ctx context.Context, experiment string, rules json.RawMessage, author string) (store.Redaction, error)
	SaveGateSpec(ctx context.Context, experiment string, spec []byte, author string) (store.GateSpec, error)
	SegmentConfig(ctx context.Context, experiment string) (store.SegmentConfig, error)
	SegmentConfigHistory(ctx context.Context, experiment string, limit int) ([]store.SegmentConfig, error)
	SaveSegmentConfig(ctx context.Context, experiment string, def segment.Definition, author, reason string) (store.SegmentConfig, error)
	Rollouts(ctx context.Context) ([]store.Rollout, error)
	Rollout(ctx context.Context, experiment string) (store.Rollout, error)
	RolloutEvents(ctx context.Context, experiment string, limit int) ([]store.RolloutEvent, error)
	Ping(ctx context.Context) error
	Versions(ctx context.Context, names []string) (map[string]int64, error)
}

type handlers struct {
	db Reader
	// sweeps keeps reconciliation sweeps; nil: the sweep routes answer 503.
	// sweepSources names the databases sweeps may read (never their URLs).
	sweeps       sweepStore
	sweepSources map[string]string
	log          *slog.Logger
	ingest       *ingester // nil: no JetStream to ingest into
	// auth decides who may use which route (routeAccess); required.
	auth *authn
	// notify announces an experiment's rule change to the verifiers; nil
	// leaves it to their periodic reload.
	notify func(experiment string) error
	// hooks are the hooks' latest reports; js, stream and durable find the
	// verifiers' backlog. Nil or empty: not shown.
	hooks           *hooks
	js              jetstream.JetStream
	stream, durable string
	// flags are the rollout documents served over OFREP; never nil once
	// newEcho ran.
	flags *flagTable
	// verdicts caches gate verdicts between changes; newEcho makes one.
	verdicts *verdictCache
	// ctl moves rollouts; newEcho makes one over db (when it is also a
	// controller.Store) without KV publishing if nil.
	ctl *controller.Controller
	// http is HSTS and OFREP's CORS; ofrepLimit OFREP's rate limit (nil:
	// none).
	http       HTTPOptions
	ofrepLimit *ofrepLimiter
}

// windows are the choices the dashboard offers; the API takes any duration.
var windows = []string{"15m", "1h", "6h", "24h", "7d", "30d", "all"}

// maxWindow bounds the window parameter.
const maxWindow = 90 * 24 * time.Hour

// newEcho builds the HTTP handler.
func newEcho(s *handlers) (*echo.Echo, error) {
	if s.auth == nil {
		return nil, errors.New("collector: no access control configured")
	}
	if s.flags == nil {
		s.flags = newFlagTable()
	}
	if s.verdicts == nil {
		s.verdicts = &verdictCache{}
	}
	if s.ctl == nil {
		// Tests that never touch rollouts build handlers over a bare Reader.
		db, _ := s.db.(controller.Store)
		s.ctl = controller.New(db, s.flags, controller.Options{Logger: s.log})
	}
	funcs := template.FuncMap{
		"pct":      func(f float64) string { return strconv.FormatFloat(f*100, 'f', 2, 64) + "%" },
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago":      ago,
		"dur":      formatDuration,
		"add":      func(a, b int) int { return a + b },
		"num":      numText,
		"dict":     dict,
		"limit":    pctText,
		"audience": audienceText,
		"ratio": func(a, b int64) float64 {
			if b == 0 {
				return 0
			}
			return float64(a) / float64(b)
		},
	}
	tpl, err := template.New("").Funcs(funcs).ParseFS(web.FS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("collector: templates: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect()
	e.Renderer = renderer{tpl}
	e.HTTPErrorHandler = errorHandler(e)
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true, LogRequestID: true, LogError: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			s.log.Info("collector: request", requestLogAttrs(c, v)...)
			return nil
		},
	}))
	e.Use(middleware.Recover())
	e.Use(hsts(s.http.TrustForwardedProto))
	// Every parameter of every route is checked before anything else reads
	// it (params.go).
	e.Use(checkParams)
	// OFREP's CORS before access control: a preflight carries no
	// credentials (httpsec.go).
	e.Use(ofrepCORS(s.http.OFREPCORSOrigins))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "DENY",
		ContentSecurityPolicy: "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
		ReferrerPolicy:        "same-origin",
	}))
	// Access control: CSRF first, so a forged form is refused whoever it
	// claims to be; then each route's role (routeAccess in auth.go).
	e.Use(csrf())
	e.Use(s.auth.middleware)
	if s.ofrepLimit != nil {
		e.Use(s.ofrepLimit.limit) // after auth: a client is its token
	}
	s.auth.routes = e.Routes

	e.StaticFS("/static", echo.MustSubFS(web.FS, "static"))
	e.GET("/", s.overview)
	e.GET("/experiments/:name", s.experiment)
	e.GET("/samples/:id", s.sample)
	e.GET("/dead-letters", s.deadLettersPage)
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.ready)
	e.GET(pathLogin, s.loginPage)
	e.POST(pathLogin, s.login, middleware.BodyLimit("16K"))
	e.POST(pathLogout, s.logout, middleware.BodyLimit("16K"))

	api := e.Group("/api/v1")
	api.GET("/experiments", s.apiExperiments)
	api.GET("/experiments/:name/segments", s.apiSegments)
	api.GET("/experiments/:name/samples", s.apiSamples)
	api.GET("/samples/:id", s.apiSample)
	api.GET("/dead-letters", s.apiDeadLetters)
	api.GET("/experiments/:name/signatures", s.apiSignatures)
	api.GET("/experiments/:name/noise", s.apiNoise)
	api.GET("/experiments/:name/rules", s.apiRules)
	api.GET("/experiments/:name/rules/history", s.apiRulesHistory)
	api.GET("/samples/:id/diff", s.apiSampleDiff)
	api.GET("/experiments/:name/gate", s.apiGate)
	api.POST("/experiments/:name/gate/confirm", s.apiGateConfirm)
	api.POST("/experiments/:name/gate/rollback", s.apiGateRollback)
	api.GET("/openapi.json", s.apiOpenAPI)
	api.GET("/experiments/:name/gate/spec", s.apiGateSpec)
	// Operator and ingest roles are enforced by s.auth.middleware.
	api.PUT("/experiments/:name/rules", s.apiPutRules, middleware.BodyLimit("1M"))
	api.POST("/experiments/:name/noise/accept", s.apiAcceptNoise, middleware.BodyLimit("1M"))
	api.PUT("/experiments/:name/gate/spec", s.apiPutGateSpec, middleware.BodyLimit("1M"))
	api.GET("/experiments/:name/redaction", s.apiRedaction)
	api.GET("/pipeline", s.apiPipeline)
	api.GET("/rollouts", s.apiRollouts)
	api.GET("/experiments/:name/rollout", s.apiRollout)
	api.GET("/experiments/:name/sweeps", s.apiSweeps)
	api.POST("/experiments/:name/sweeps", s.apiStartSweep, middleware.BodyLimit("64K"))
	api.GET("/sweeps/:id", s.apiSweep)
	api.POST("/sweeps/:id/:action", s.apiSweepAction, middleware.BodyLimit("16K"))
	e.POST("/experiments/:name/sweeps/:id/:action", s.sweepFormAction, middleware.BodyLimit("16K"))
	e.POST("/experiments/:name/sweeps", s.sweepFormStart, middleware.BodyLimit("16K"))
	api.GET("/experiments/:name/rollout/events", s.apiRolloutEvents)
	api.PUT("/experiments/:name/rollout", s.apiPutRollout, middleware.BodyLimit("1M"))
	api.POST("/experiments/:name/rollout/:action", s.apiRolloutAction, middleware.BodyLimit("16K"))
	e.POST("/experiments/:name/rollout/:action", s.rolloutFormAction, middleware.BodyLimit("16K"))
	api.PUT("/experiments/:name/redaction", s.apiPutRedaction, middleware.BodyLimit("1M"))
	api.GET("/experiments/:name/segment-config", s.apiSegmentConfig)
	api.GET("/experiments/:name/segment-config/history", s.apiSegmentConfigHistory)
	api.PUT("/experiments/:name/segment-config", s.apiPutSegmentConfig, middleware.BodyLimit("16K"))
	if s.ingest != nil {
		api.POST("/pairs", s.ingest.handle, middleware.BodyLimit(strconv.Itoa(MaxIngestBytes)))
	}

	// OFREP: applications evaluate rollout flags (ofrep.go; bodies are
	// limited to MaxOFREPBytes there, to answer in OFREP's error shape).
	e.POST(pathOFREPFlags, s.ofrepBulkEvaluate)
	e.POST(pathOFREPFlag, s.ofrepEvaluate)
	e.GET(pathOFREPConfiguration, s.ofrepConfiguration)
	return e, nil
}

// requestLogAttrs is what the request log records of a request: method,
// path, status, latency, request id, who (a token's name, never the token),
// the names of its query parameters — never their values, which may carry
// user keys or secrets — and, for a 5xx only, the error (a 4xx's message
// went to the client and may describe its input). A refused request (4xx,
// 5xx) is logged by its route pattern (/api/v1/samples/:id), not its path:
// its path parameters may be what was refused.
func requestLogAttrs(c echo.Context, v middleware.RequestLoggerValues) []any {
	path := v.URIPath
	if bad, _ := c.Get(ctxParamsBad).(bool); bad || v.Status >= 400 || paramProblem(path) != "" {
		path = c.Path()
		if path == "" {
			path = "(no route)"
		}
	}
	attrs := []any{"method", v.Method, "path", path, "status", v.Status,
		"latency", v.Latency, "request_id", v.RequestID, "principal", principalName(c)}
	if raw := c.Request().URL.RawQuery; raw != "" {
		var names []string
		for _, kv := range strings.Split(raw, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if k, err := url.QueryUnescape(k); err == nil && validName(k) && len(names) < maxParams {
				names = append(names, k)
			} else if len(names) < maxParams {
				names = append(names, "?")
			}
		}
		attrs = append(attrs, "query", names)
	}
	if v.Status >= 500 && v.Error != nil {
		attrs = append(attrs, "err", v.Error)
	}
	return attrs
}

type renderer struct{ t *template.Template }

// Render renders a template; a page's data map gains "Auth", what the header
// shows about the visitor.
func (r renderer) Render(w io.Writer, name string, data any, c echo.Context) error {
	if m, ok := data.(map[string]any); ok && c != nil {
		if _, set := m["Auth"]; !set {
			m["Auth"] = viewOf(c)
		}
	}
	if p, ok := data.(authSetter); ok && c != nil {
		p.setAuth(viewOf(c))
	}
	return r.t.ExecuteTemplate(w, name, data)
}

// dict builds a map for a template call: dict "Key" value "Key2" value2.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// errorHandler answers API paths with JSON {"error": ...} and pages with text.
func errorHandler(e *echo.Echo) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code, msg := http.StatusInternalServerError, "internal error"
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			msg = fmt.Sprint(he.Message)
		}
		// The request log records the error of a 5xx (requestLogAttrs);
		// nothing else is logged here.
		_ = c.JSON(code, map[string]string{"error": msg})
	}
}

func (s *handlers) ready(c echo.Context) error {
	if err := s.db.Ping(c.Request().Context()); err != nil {
		return c.String(http.StatusServiceUnavailable, "store unreachable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

func notFoundOr(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, what+" not found")
	}
	return err
}

// --- views ----------------------------------------------------------------

// ExperimentView is one experiment in the overview and the API.
type ExperimentView struct {
	Name      string      `json:"name"`
	Stage     string      `json:"stage"`
	Rate      report.Rate `json:"divergence"`
	FirstSeen time.Time   `json:"first_seen"`
	LastSeen  time.Time   `json:"last_seen"`
}

// SegmentView is one row of the segment table.
type SegmentView struct {
	Segment         string            `json:"segment"`
	Attrs           map[string]string `json:"attrs"`
	Rate            report.Rate       `json:"divergence"`
	ControlErrors   int64             `json:"control_errors"`
	CandidateErrors int64             `json:"candidate_errors"`
	Skipped         int64             `json:"skipped_writes"`
	Timeouts        int64             `json:"candidate_timeouts"`
	// Noise is the divergence of A/A pairs (control against a second read of
	// control): what the comparison reports when nothing changed. Absent
	// without A/A pairs.
	Noise    *report.Rate `json:"aa_noise,omitempty"`
	LastSeen time.Time    `json:"last_seen"`
}

// SegmentsView is the segment table of one experiment.
type SegmentsView struct {
	Experiment string        `json:"experiment"`
	Window     string        `json:"window"`
	Operation  string        `json:"operation,omitempty"`
	Total      report.Rate   `json:"total"`
	Segments   []SegmentView `json:"segments"`
}

func (s *handlers) experiments(ctx context.Context) ([]ExperimentView, error) {
	exps, err := s.db.Experiments(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ExperimentView, 0, len(exps))
	for _, e := range exps {
		out = append(out, ExperimentView{Name: e.Name, Stage: e.Stage, Rate: report.NewRate(e.Divergent, e.Pairs), FirstSeen: e.FirstSeen, LastSeen: e.LastSeen})
	}
	return out, nil
}

func (s *handlers) segments(c echo.Context, defWindow string) (SegmentsView, error) {
	name, err := nameParam(c, "name")
	if err != nil {
		return SegmentsView{}, err
	}
	window, since, err := windowParam(c, defWindow)
	if err != nil {
		return SegmentsView{}, err
	}
	op, err := optionalOperation(c)
	if err != nil {
		return SegmentsView{}, err
	}
	rows, err := s.db.Segments(c.Request().Context(), name, store.SegmentQuery{Since: since, Operation: op})
	if err != nil {
		return SegmentsView{}, notFoundOr(err, "experiment "+name)
	}
	v := SegmentsView{Experiment: name, Window: window, Operation: op, Segments: make([]SegmentView, 0, len(rows))}
	var pairs, div int64
	for _, r := range rows {
		pairs += r.Pairs
		div += r.Divergent
		v.Segments = append(v.Segments, SegmentView{
			Segment: r.Segment, Attrs: r.Attrs, Rate: report.NewRate(r.Divergent, r.Pairs),
			ControlErrors: r.ControlErrors, CandidateErrors: r.CandidateErrors, Skipped: r.Skipped, Timeouts: r.Timeouts, LastSeen: r.LastSeen,
		})
		if r.AAPairs > 0 {
			n := report.NewRate(r.AADivergent, r.AAPairs)
			v.Segments[len(v.Segments)-1].Noise = &n
		}
	}
	v.Total = report.NewRate(div, pairs)
	return v, nil
}

// --- API ------------------------------------------------------------------

func (s *handlers) apiExperiments(c echo.Context) error {
	v, err := s.experiments(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"experiments": v})
}

func (s *handlers) apiSegments(c echo.Context) error {
	v, err := s.segments(c, "24h")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// SampleView is a divergence sample in the API.
type SampleView struct {
	ID         int64     `json:"id"`
	PairID     string    `json:"pair_id"`
	Experiment string    `json:"experiment"`
	Operation  string    `json:"operation"`
	Segment    string    `json:"segment"`
	Kind       string    `json:"kind"`
	Stage      string    `json:"stage"`
	UserKey    string    `json:"user_key"`
	Time       time.Time `json:"time"`
	Paths      []string  `json:"paths"`
	Verdict    string    `json:"verdict"`
	Signature  string    `json:"signature,omitempty"`
	// RulesVersion is the version of the diff rules the pair was judged under.
	RulesVersion int64           `json:"rules_version"`
	Diffs        json.RawMessage `json:"diffs,omitempty"`
	Control      json.RawMessage `json:"control"`
	Candidate    json.RawMessage `json:"candidate"`
}

func sampleView(x store.Sample) SampleView {
	return SampleView{ID: x.ID, PairID: x.PairID, Experiment: x.Experiment, Operation: x.Operation, Segment: x.Segment,
		Kind: x.Kind, Stage: x.Stage, UserKey: x.UserKey, Time: x.Time, Paths: x.Paths, Verdict: x.Verdict, Signature: x.Signature,
		RulesVersion: x.RulesVersion, Diffs: x.Diffs, Control: x.Control, Candidate: x.Candidate}
}

func (s *handlers) sampleQuery(c echo.Context) (string, store.SampleQuery, error) {
	name, err := nameParam(c, "name")
	if err != nil {
		return "", store.SampleQuery{}, err
	}
	op, err := optionalOperation(c)
	if err != nil {
		return "", store.SampleQuery{}, err
	}
	limit, err := limitParam(c, 20, 500)
	if err != nil {
		return "", store.SampleQuery{}, err
	}
	seg, err := queryText(c, "segment", 512)
	if err != nil {
		return "", store.SampleQuery{}, err
	}
	return name, store.SampleQuery{Segment: seg, Operation: op, Limit: limit}, nil
}

func (s *handlers) apiSamples(c echo.Context) error {
	name, q, err := s.sampleQuery(c)
	if err != nil {
		return err
	}
	xs, err := s.db.Samples(c.Request().Context(), name, q)
	if err != nil {
		return notFoundOr(err, "experiment "+name)
	}
	out := make([]SampleView, 0, len(xs))
	for _, x := range xs {
		out = append(out, sampleView(x))
	}
	return c.JSON(http.StatusOK, map[string]any{"experiment": name, "samples": out})
}

func (s *handlers) apiSample(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	x, err := s.db.Sample(c.Request().Context(), id)
	if err != nil {
		return notFoundOr(err, "sample "+strconv.FormatInt(id, 10))
	}
	return c.JSON(http.StatusOK, sampleView(x))
}

// DeadLetterView is a dead letter in the API; Data is the start of the
// rejected bytes as text.
type DeadLetterView struct {
	ID      int64     `json:"id"`
	Source  string    `json:"source"`
	Subject string    `json:"subject"`
	Reason  string    `json:"reason"`
	Size    int       `json:"size"`
	At      time.Time `json:"at"`
}

func (s *handlers) apiDeadLetters(c echo.Context) error {
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		return err
	}
	ds, err := s.db.DeadLetters(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	n, err := s.db.DeadLetterCount(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]DeadLetterView, 0, len(ds))
	for _, d := range ds {
		out = append(out, DeadLetterView{ID: d.ID, Source: d.Source, Subject: d.Subject, Reason: d.Reason, Size: d.Size, At: d.At})
	}
	return c.JSON(http.StatusOK, map[string]any{"total": n, "dead_letters": out})
}

// --- pages ----------------------------------------------------------------

func (s *handlers) deadLettersPage(c echo.Context) error {
	ctx := c.Request().Context()
	ds, err := s.db.DeadLetters(ctx, 100)
	if err != nil {
		return err
	}
	n, err := s.db.DeadLetterCount(ctx)
	if err != nil {
		return err
	}
	return c.Render(http.StatusOK, "deadletters.html", map[string]any{"Title": "Dead letters", "DeadLetters": ds, "Count": n})
}

func indent(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// formatDuration shows a latency with three significant figures at most.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms"
	}
	return d.Round(10 * time.Millisecond).String()
}
