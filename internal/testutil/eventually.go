package testutil

import (
	"testing"
	"time"
)

// Eventually calls cond until it returns "" or the window passes, then fails
// the test with the last message cond returned. It polls every 20ms; use it
// for asynchronous expectations instead of a sleep.
func Eventually(t testing.TB, window time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(window)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", window, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
