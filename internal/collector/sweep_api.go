package collector

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/sweep"
	"github.com/parityhq/parity/pkg/reconcile"
)

// sweepStore is what the sweep routes need of the store.
type sweepStore interface {
	CreateSweep(ctx context.Context, sw store.Sweep) (store.Sweep, error)
	Sweep(ctx context.Context, id int64) (store.Sweep, error)
	Sweeps(ctx context.Context, experiment string, limit int) ([]store.Sweep, error)
	SetSweepStatus(ctx context.Context, id int64, status, reason string, from ...string) (store.Sweep, error)
}

// StartSweep is the body of POST /api/v1/experiments/{name}/sweeps.
type StartSweep struct {
	// Name names what is compared; its counts land under the operation
	// "reconcile:<name>". Defaults to the old table.
	Name string `json:"name,omitempty"`
	sweep.Spec
}

// SweepView is a sweep as the API shows it.
type SweepView struct {
	ID         int64            `json:"id"`
	Experiment string           `json:"experiment"`
	Name       string           `json:"name"`
	Operation  string           `json:"operation"`
	Status     string           `json:"status"`
	Error      string           `json:"error,omitempty"`
	Spec       sweep.Spec       `json:"spec"`
	Chunks     int64            `json:"chunks"`
	RowsDone   int64            `json:"rows_done"`
	Estimate   int64            `json:"estimate"`
	Counts     reconcile.Counts `json:"counts"`
	// Differences is rows that did not match so far.
	Differences int64 `json:"differences"`
	// Rate is rows per second since the sweep started; ETASeconds the
	// estimated time to its end (absent when unknown).
	Rate       float64    `json:"rate"`
	ETASeconds *float64   `json:"eta_seconds,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

func sweepView(sw store.Sweep, now time.Time) SweepView {
	v := SweepView{ID: sw.ID, Experiment: sw.Experiment, Name: sw.Name, Operation: sw.Operation, Status: sw.Status, Error: sw.Error,
		Chunks: sw.Chunks, RowsDone: sw.RowsDone, Estimate: sw.Estimate, CreatedBy: sw.CreatedBy, CreatedAt: sw.CreatedAt,
		StartedAt: sw.StartedAt, UpdatedAt: sw.UpdatedAt, FinishedAt: sw.FinishedAt}
	_ = json.Unmarshal(sw.Spec, &v.Spec)
	var c sweep.Counts
	if json.Unmarshal(sw.Counts, &c) == nil {
		v.Counts = c.Counts
	}
	v.Differences = v.Counts.Differences()
	if sw.StartedAt != nil {
		end := now
		if sw.FinishedAt != nil {
			end = *sw.FinishedAt
		} else if sw.Status != store.SweepRunning {
			end = sw.UpdatedAt
		}
		if secs := end.Sub(*sw.StartedAt).Seconds(); secs > 0 {
			v.Rate = float64(sw.RowsDone) / secs
		}
	}
	if sw.Status == store.SweepRunning && v.Rate > 0 && sw.Estimate > sw.RowsDone {
		eta := float64(sw.Estimate-sw.RowsDone) / v.Rate
		v.ETASeconds = &eta
	}
	return v
}

func (s *handlers) sweepsOrUnavailable() (sweepStore, error) {
	if s.sweeps == nil {
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "sweeps are not available on this collector")
	}
	return s.sweeps, nil
}

// apiStartSweep answers POST /api/v1/experiments/{name}/sweeps.
func (s *handlers) apiStartSweep(c echo.Context) error {
	db, err := s.sweepsOrUnavailable()
	if err != nil {
		return err
	}
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var req StartSweep
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	sw, err := s.startSweep(c, db, name, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, sweepView(sw, time.Now()))
}

// startSweep validates and records a new sweep of experiment name.
func (s *handlers) startSweep(c echo.Context, db sweepStore, name string, req StartSweep) (store.Sweep, error) {
	if err := req.Spec.Validate(s.sweepSources); err != nil {
		return store.Sweep{}, echo.NewHTTPError(http.StatusBadRequest, strings.TrimPrefix(err.Error(), sweep.ErrInvalid.Error()+": "))
	}
	if req.Name == "" {
		req.Name = req.Old.Table
	}
	spec, err := json.Marshal(req.Spec)
	if err != nil {
		return store.Sweep{}, err
	}
	return db.CreateSweep(c.Request().Context(), store.Sweep{Experiment: name, Name: req.Name, Operation: sweep.Operation(req.Name),
		Spec: spec, CreatedBy: authorOf(c, "")})
}

// apiSweeps answers GET /api/v1/experiments/{name}/sweeps: newest first.
func (s *handlers) apiSweeps(c echo.Context) error {
	db, err := s.sweepsOrUnavailable()
	if err != nil {
		return err
	}
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	sws, err := db.Sweeps(c.Request().Context(), name, 50)
	if err != nil {
		return err
	}
	now := time.Now()
	out := make([]SweepView, 0, len(sws))
	for _, sw := range sws {
		out = append(out, sweepView(sw, now))
	}
	return c.JSON(http.StatusOK, out)
}

func sweepID(c echo.Context) (int64, error) { return pathInt(c, "id", "a sweep id") }

// apiSweep answers GET /api/v1/sweeps/{id}.
func (s *handlers) apiSweep(c echo.Context) error {
	db, err := s.sweepsOrUnavailable()
	if err != nil {
		return err
	}
	id, err := sweepID(c)
	if err != nil {
		return err
	}
	sw, err := db.Sweep(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such sweep")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sweepView(sw, time.Now()))
}

// apiSweepAction answers POST /api/v1/sweeps/{id}/{pause|resume|cancel}.
func (s *handlers) apiSweepAction(c echo.Context) error {
	db, err := s.sweepsOrUnavailable()
	if err != nil {
		return err
	}
	id, err := sweepID(c)
	if err != nil {
		return err
	}
	action := pathText(c, "action")
	var to string
	var from []string
	switch action {
	case "pause":
		to, from = store.SweepPaused, []string{store.SweepRunning}
	case "resume":
		to, from = store.SweepRunning, []string{store.SweepPaused, store.SweepFailed}
	case "cancel":
		to, from = store.SweepCancelled, []string{store.SweepRunning, store.SweepPaused, store.SweepFailed}
	default:
		return badParam("action", "want pause, resume or cancel")
	}
	sw, err := db.SetSweepStatus(c.Request().Context(), id, to, "", from...)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "no such sweep")
	case errors.Is(err, store.ErrSweepMoved):
		return echo.NewHTTPError(http.StatusConflict, "sweep "+strconv.FormatInt(id, 10)+" is "+sw.Status+": cannot "+action)
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, sweepView(sw, time.Now()))
}
