package publish

import (
	"fmt"
	"testing"
	"time"
)

// recentIDs remembers an id for at least RecentIDWindow and at most twice
// that, and never more than two generations of maxRecentIDs.
func TestRecentIDs(t *testing.T) {
	var r recentIDs
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	if r.seen("a", t0) {
		t.Fatal("a new id was seen")
	}
	if !r.seen("a", t0.Add(RecentIDWindow-time.Second)) {
		t.Error("an id within the window was not seen")
	}
	r.seen("b", t0.Add(RecentIDWindow)) // rotates: a is in the previous generation
	if !r.seen("a", t0.Add(RecentIDWindow+time.Second)) {
		t.Error("an id of the previous generation was not seen")
	}
	r.seen("c", t0.Add(2*RecentIDWindow+time.Second)) // rotates again: a is gone
	if r.seen("a", t0.Add(2*RecentIDWindow+2*time.Second)) {
		t.Error("an id older than twice the window was still seen")
	}
	for i := range 3 * maxRecentIDs {
		r.seen(fmt.Sprint("id-", i), t0.Add(3*RecentIDWindow))
	}
	if n := len(r.cur) + len(r.prev); n > 2*maxRecentIDs {
		t.Errorf("%d ids remembered, want at most %d", n, 2*maxRecentIDs)
	}
}
