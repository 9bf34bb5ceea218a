package collector

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/store"
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

// pageSweeps is the experiment page's sweeps, newest first (none without a
// sweep store).
func (s *handlers) pageSweeps(c echo.Context, name string) ([]SweepRow, error) {
	if s.sweeps == nil {
		return nil, nil
	}
	sws, err := s.sweeps.Sweeps(c.Request().Context(), name, 10)
	if err != nil {
		return nil, err
	}
	return sweepRows(sws, time.Now()), nil
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
