package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/testutil"
)

// TestAnchor: the first look fixes the anchor at its minute; later looks,
// concurrent first looks and other names behave as documented.
func TestAnchor(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testutil.FreshDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 4, 10, 3, 27, 0, time.UTC)
	tests := []struct {
		name, experiment, analysis string
		at, want                   time.Time
	}{
		{"first look: its minute", "orders", "argo-7c9d", t0, t0.Truncate(time.Minute)},
		{"later look: the same anchor", "orders", "argo-7c9d", t0.Add(3 * time.Hour), t0.Truncate(time.Minute)},
		{"an earlier clock cannot move it", "orders", "argo-7c9d", t0.Add(-time.Hour), t0.Truncate(time.Minute)},
		{"another name: its own", "orders", "argo-5f6d", t0.Add(time.Hour), t0.Add(time.Hour).Truncate(time.Minute)},
		{"the same name in another experiment: its own", "payments", "argo-7c9d", t0.Add(2 * time.Hour), t0.Add(2 * time.Hour).Truncate(time.Minute)},
	}
	for _, tt := range tests {
		got, err := s.Anchor(ctx, tt.experiment, tt.analysis, tt.at)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%s: Anchor = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}

	// Concurrent first looks agree.
	var wg sync.WaitGroup
	got := make([]time.Time, 8)
	for i := range got {
		wg.Go(func() {
			at := t0.Add(time.Duration(i) * time.Hour)
			var err error
			if got[i], err = s.Anchor(ctx, "orders", "race", at); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, g := range got {
		if !g.Equal(got[0]) {
			t.Fatalf("concurrent first looks disagree: %v", got)
		}
	}

	// Bounded: past the cap, the oldest anchors go.
	maxAnchors = 20
	defer func() { maxAnchors = MaxAnchorsPerExperiment }()
	for i := range maxAnchors + 5 {
		if _, err := s.Anchor(ctx, "bounded", fmt.Sprint("a", i), t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM gate_anchors WHERE experiment = 'bounded'`).Scan(&n); err != nil || n != maxAnchors {
		t.Errorf("%d anchors kept (%v), want %d", n, err, maxAnchors)
	}
	if a, _ := s.Anchor(ctx, "bounded", "a0", t0.Add(24*time.Hour)); !a.Equal(t0.Add(24 * time.Hour).Truncate(time.Minute)) {
		t.Errorf("a forgotten anchor is made anew at its next look: %v", a)
	}
}
