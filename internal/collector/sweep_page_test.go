package collector

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/store"
)

// TestSweepRows: the reconciliation section's view model: progress from
// the estimate, rate and ETA from the time since the start, and the actions
// each status allows.
func TestSweepRows(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	started := now.Add(-10 * time.Second)
	done := now.Add(-2 * time.Second)
	counts, _ := json.Marshal(map[string]any{"rows_compared": 1003, "matched": 1000, "divergent": 2, "missing_in_new": 1})
	rows := sweepRows([]store.Sweep{
		{ID: 1, Status: store.SweepRunning, RowsDone: 1000, Estimate: 4000, StartedAt: &started, Counts: counts},
		{ID: 2, Status: store.SweepComplete, RowsDone: 500, Estimate: 500, StartedAt: &started, FinishedAt: &done},
		{ID: 3, Status: store.SweepPaused, RowsDone: 10, UpdatedAt: now, StartedAt: &started},
	}, now)
	r := rows[0]
	if !r.Known || r.Percent != 25 || r.Rate != 100 || r.ETA != "30s" || r.Differences != 3 || len(r.Actions) != 2 || r.Actions[0] != "pause" {
		t.Errorf("running: %+v", r)
	}
	if r := rows[1]; r.Percent != 100 || r.ETA != "" || r.Actions != nil || r.Rate != 500.0/8 {
		t.Errorf("complete: %+v", r)
	}
	if r := rows[2]; r.Known || r.Actions[0] != "resume" || r.ETA != "" {
		t.Errorf("paused without an estimate: %+v", r)
	}
}
