package collector

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/cli"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/sweep"
)

// SweepRow is one sweep in the experiment page's reconciliation section.
type SweepRow struct {
	SweepView
	// Percent is how far the sweep is, 0–100 (100 when complete); Known
	// says whether there is an estimate to measure it by.
	Percent float64
	Known   bool
	// ETA is the estimated time left, rounded; empty when unknown.
	ETA string
	// Actions are what an operator may do now: pause, resume, cancel.
	Actions []string
}

// sweepRows is the view model of the reconciliation section.
func sweepRows(sws []store.Sweep, now time.Time) []SweepRow {
	rows := make([]SweepRow, 0, len(sws))
	for _, sw := range sws {
		r := SweepRow{SweepView: sweepView(sw, now)}
		switch {
		case sw.Status == store.SweepComplete:
			r.Percent, r.Known = 100, true
		case sw.Estimate > 0:
			r.Percent, r.Known = min(100, 100*float64(sw.RowsDone)/float64(sw.Estimate)), true
		}
		if r.ETASeconds != nil {
			r.ETA = (time.Duration(*r.ETASeconds) * time.Second).Round(time.Second).String()
		}
		switch sw.Status {
		case store.SweepRunning:
			r.Actions = []string{"pause", "cancel"}
		case store.SweepPaused, store.SweepFailed:
			r.Actions = []string{"resume", "cancel"}
		}
		rows = append(rows, r)
	}
	return rows
}

// SweepSection is the view model of the experiment page's reconciliation
// section: its sweeps, newest first, and the source databases a new sweep
// may name (none: sweeps cannot run on this collector).
type SweepSection struct {
	Experiment string
	Rows       []SweepRow
	Sources    []string
}

// pageSweeps is the experiment page's reconciliation section; nil when
// there is nothing to show.
func (s *handlers) pageSweeps(c echo.Context, name string) (*SweepSection, error) {
	if s.sweeps == nil {
		return nil, nil
	}
	sws, err := s.sweeps.Sweeps(c.Request().Context(), name, 10)
	if err != nil {
		return nil, err
	}
	if len(sws) == 0 && len(s.sweepSources) == 0 {
		return nil, nil
	}
	return &SweepSection{Experiment: name, Rows: sweepRows(sws, time.Now()), Sources: slices.Sorted(maps.Keys(s.sweepSources))}, nil
}

// sweepFormStart is the dashboard's form to start a sweep: it redirects
// back to the experiment page.
func (s *handlers) sweepFormStart(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	db, err := s.sweepsOrUnavailable()
	if err != nil {
		return err
	}
	form := map[string]string{}
	for _, f := range []string{"old_source", "old_table", "new_source", "new_table", "key", "segments"} {
		v, err := formText(c, f, 256)
		if err != nil {
			return err
		}
		form[f] = strings.TrimSpace(v)
	}
	req := StartSweep{Spec: sweep.Spec{
		Old: sweep.Side{Source: form["old_source"], Table: form["old_table"]},
		New: sweep.Side{Source: form["new_source"], Table: form["new_table"]},
		Key: form["key"], Segments: cli.List(form["segments"]),
	}}
	if rate, ok, err := formFloat(c, "rate"); err != nil {
		return err
	} else if ok {
		req.Rate = rate
	}
	if _, err := s.startSweep(c, db, name, req); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/experiments/"+name+"#sweeps")
}

// sweepFormAction is the dashboard's form to pause, resume or cancel a
// sweep: it redirects back to the experiment page.
func (s *handlers) sweepFormAction(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	if err := s.apiSweepAction(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/experiments/"+name+"#sweeps")
}
