package collector

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/rollout"
)

// RolloutView is a rollout as the API shows it.
type RolloutView struct {
	Experiment string       `json:"experiment"`
	Flag       string       `json:"flag"`
	Plan       rollout.Plan `json:"plan"`
	// Step is the number of steps applied; Current is steps[Step-1] (nil at
	// 0) and Next is steps[Step] (nil when every step is applied).
	Step     int       `json:"step"`
	Current  *StepView `json:"current,omitempty"`
	Next     *StepView `json:"next,omitempty"`
	Status   string    `json:"status"`
	Revision int64     `json:"revision"`
	// EnteredAt is when the current step was entered or last resumed: the
	// start of its gate's window.
	EnteredAt time.Time `json:"entered_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Settling says the current step's gate window has not started yet:
	// pairs from before the change may still be being counted.
	Settling bool `json:"settling"`
	// HoldLeft is how much of the current step's hold is left, in seconds.
	HoldLeft float64 `json:"hold_left_s"`
	// Gate is the current step's gate over its window; nil when the step has
	// none (or no step is applied).
	Gate *GateView `json:"gate,omitempty"`
	// Unreconciled says why the rollout may not leave the current step
	// yet: the reconciliation sweeps the step requires that have not
	// completed clean since it began (docs/reconcile.md); empty when none.
	Unreconciled string `json:"unreconciled,omitempty"`
	// Events is the audit log, oldest first (the latest 100 in the rollout
	// view; all of them from …/rollout/events).
	Events []RolloutEventView `json:"events"`
}

// StepView is one step of a plan with its position.
type StepView struct {
	Index int `json:"index"`
	rollout.Step
}

// RolloutEventView is one entry of a rollout's audit log.
type RolloutEventView struct {
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Cause    string          `json:"cause"`
	FromStep int             `json:"from_step"`
	ToStep   int             `json:"to_step"`
	Status   string          `json:"status"`
	Revision int64           `json:"revision"`
	Reason   string          `json:"reason"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// PlanUpdate is the body of PUT …/rollout.
type PlanUpdate struct {
	// Flag is the OpenFeature flag key the applications evaluate; defaults
	// to the experiment's name. It cannot change once saved.
	Flag   string       `json:"flag"`
	Plan   rollout.Plan `json:"plan"`
	Reason string       `json:"reason"`
}

// RolloutAction is the body of POST …/rollout/{action}.
type RolloutAction struct {
	Reason string `json:"reason"`
	// Step is the target of promote and rollback; absent means the next or
	// the previous step.
	Step *int `json:"step,omitempty"`
}

func eventViews(evs []store.RolloutEvent) []RolloutEventView {
	out := make([]RolloutEventView, len(evs))
	for i, e := range evs {
		out[i] = RolloutEventView{At: e.At, Actor: e.Actor, Action: e.Action, Cause: e.Cause, FromStep: e.FromStep,
			ToStep: e.ToStep, Status: e.Status, Revision: e.Revision, Reason: e.Reason, Detail: e.Detail}
	}
	return out
}

// rolloutView gathers a rollout, its current gate and its latest events.
func (s *handlers) rolloutView(c echo.Context, name string) (RolloutView, error) {
	ctx := c.Request().Context()
	r, err := s.db.Rollout(ctx, name)
	if err != nil {
		return RolloutView{}, notFoundOr(err, "rollout of "+name)
	}
	plan, err := controller.ParsePlan(r.Plan)
	if err != nil {
		return RolloutView{}, err
	}
	v := RolloutView{Experiment: r.Experiment, Flag: r.Flag, Plan: plan, Step: r.Step, Status: r.Status,
		Revision: r.Revision, EnteredAt: r.EnteredAt, UpdatedAt: r.UpdatedAt}
	v.Settling = controller.Settling(r)
	if r.Step > 0 {
		v.Current = &StepView{Index: r.Step - 1, Step: plan.Steps[r.Step-1]}
		v.HoldLeft = max(0, (v.Current.Hold - s.ctl.Now().Sub(r.EnteredAt)).Seconds())
	}
	if r.Step < len(plan.Steps) {
		v.Next = &StepView{Index: r.Step, Step: plan.Steps[r.Step]}
	}
	gv, gated, err := s.ctl.Gate(ctx, r, plan)
	if err != nil {
		return RolloutView{}, err
	}
	if gated {
		v.Gate = &gv
	}
	if v.Unreconciled, err = s.ctl.Unreconciled(ctx, r, plan); err != nil {
		return RolloutView{}, err
	}
	evs, err := s.db.RolloutEvents(ctx, name, 100)
	if err != nil {
		return RolloutView{}, err
	}
	v.Events = eventViews(evs)
	return v, nil
}

// rolloutError turns the controller's refusals into HTTP answers.
func rolloutError(err error) error {
	var ce *controller.Error
	if errors.As(err, &ce) {
		code := http.StatusConflict // ErrRefused, ErrConflict
		switch {
		case errors.Is(ce.Kind, controller.ErrInvalid):
			code = http.StatusBadRequest
		case errors.Is(ce.Kind, controller.ErrNotFound):
			code = http.StatusNotFound
		}
		return echo.NewHTTPError(code, ce.Err.Error())
	}
	if errors.Is(err, rollout.ErrInvalidPlan) {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	return err
}

// apiRollouts answers GET /api/v1/rollouts: every rollout's position.
func (s *handlers) apiRollouts(c echo.Context) error {
	rs, err := s.db.Rollouts(c.Request().Context())
	if err != nil {
		return err
	}
	type item struct {
		Experiment string    `json:"experiment"`
		Flag       string    `json:"flag"`
		Step       int       `json:"step"`
		Steps      int       `json:"steps"`
		Status     string    `json:"status"`
		Revision   int64     `json:"revision"`
		EnteredAt  time.Time `json:"entered_at"`
	}
	out := make([]item, 0, len(rs))
	for _, r := range rs {
		plan, _ := controller.ParsePlan(r.Plan) // an invalid stored plan still lists
		out = append(out, item{r.Experiment, r.Flag, r.Step, len(plan.Steps), r.Status, r.Revision, r.EnteredAt})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *handlers) apiRollout(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	v, err := s.rolloutView(c, name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *handlers) apiRolloutEvents(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	n, err := queryInt(c, "limit", 0, 0, 1<<30)
	if err != nil {
		return err
	}
	limit := int(n)
	if _, err := s.db.Rollout(c.Request().Context(), name); err != nil {
		return notFoundOr(err, "rollout of "+name)
	}
	evs, err := s.db.RolloutEvents(c.Request().Context(), name, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, eventViews(evs))
}

// apiPutRollout saves a plan: PUT /api/v1/experiments/{name}/rollout.
func (s *handlers) apiPutRollout(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var u PlanUpdate
	if err := decodeBody(c, &u); err != nil {
		return err
	}
	if strings.TrimSpace(u.Reason) == "" {
		return echo.NewHTTPError(http.StatusBadRequest, `body: field "reason" is required; the audit log keeps it`)
	}
	if _, err := s.ctl.SavePlan(c.Request().Context(), name, u.Flag, u.Plan, authorOf(c, ""), u.Reason); err != nil {
		return rolloutError(err)
	}
	return s.apiRollout(c)
}

// apiRolloutAction is POST /api/v1/experiments/{name}/rollout/{action}.
func (s *handlers) apiRolloutAction(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var a RolloutAction
	if err := decodeBody(c, &a); err != nil {
		return err
	}
	if _, err := s.ctl.Act(c.Request().Context(), name, pathText(c, "action"), authorOf(c, ""), strings.TrimSpace(a.Reason), a.Step); err != nil {
		return rolloutError(err)
	}
	return s.apiRollout(c)
}

// rolloutFormAction is the dashboard's form for the same actions: it
// redirects back to the experiment page.
func (s *handlers) rolloutFormAction(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	to, err := formInt(c, "step")
	if err != nil {
		return err
	}
	reason, err := formText(c, "reason", maxParamBytes)
	if err != nil {
		return err
	}
	if _, err := s.ctl.Act(c.Request().Context(), name, pathText(c, "action"), authorOf(c, ""), strings.TrimSpace(reason), to); err != nil {
		return rolloutError(err)
	}
	return c.Redirect(http.StatusSeeOther, "/experiments/"+name+"#rollout")
}

// pageRollout is the experiment page's rollout, or nil without one.
func (s *handlers) pageRollout(c echo.Context, name string) (*RolloutView, error) {
	if _, err := s.db.Rollout(c.Request().Context(), name); errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	v, err := s.rolloutView(c, name)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// audienceText says who an audience is, for people.
func audienceText(a rollout.Audience) string {
	var parts []string
	if len(a.Users) > 0 {
		u := a.Users
		more := ""
		if len(u) > 5 {
			u, more = u[:5], fmt.Sprintf(" and %d more", len(a.Users)-5)
		}
		parts = append(parts, "users "+strings.Join(u, ", ")+more)
	}
	for _, r := range a.Rules {
		parts = append(parts, r.Attribute+" in "+strings.Join(r.In, ", "))
	}
	if a.Percent > 0 {
		p := strconv.FormatFloat(a.Percent, 'g', -1, 64) + "%"
		if len(parts) > 0 {
			p += " of everyone else"
		} else {
			p += " of everyone"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}
