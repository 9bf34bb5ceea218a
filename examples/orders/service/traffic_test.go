package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parityhq/parity/internal/testutil"
)

func TestUserAttrs(t *testing.T) {
	var opts TrafficOptions
	countries := map[string]int{}
	plans := map[string]int{}
	for i := range DefaultUsers {
		u := strconv.Itoa(1000 + i)
		c, p := UserAttrs(u, opts)
		if c2, p2 := UserAttrs(u, opts); c2 != c || p2 != p {
			t.Fatalf("user %s: %s %s, then %s %s", u, c, p, c2, p2)
		}
		countries[c]++
		plans[p]++
	}
	// Every value is used, none by far less than its share.
	for _, c := range []string{"IN", "US", "DE", "BR"} {
		if countries[c] < DefaultUsers/4/2 {
			t.Errorf("country %s: %d of %d users", c, countries[c], DefaultUsers)
		}
	}
	for _, p := range []string{"free", "pro"} {
		if plans[p] < DefaultUsers/2/2 {
			t.Errorf("plan %s: %d of %d users", p, plans[p], DefaultUsers)
		}
	}
	if len(countries) != 4 || len(plans) != 2 {
		t.Errorf("countries %v, plans %v", countries, plans)
	}
	for _, u := range []string{"123", "456"} {
		if c, _ := UserAttrs(u, opts); c != "US" {
			t.Errorf("testing group user %s: country %s, want US", u, c)
		}
	}
	custom := TrafficOptions{Countries: []string{"FR"}, Plans: []string{"gold"}, TestingGroup: []string{"7"}}
	if c, p := UserAttrs("7", custom); c != "US" || p != "gold" {
		t.Errorf("custom testing group: %s %s", c, p)
	}
	if c, p := UserAttrs("123", custom); c != "FR" || p != "gold" {
		t.Errorf("custom lists: %s %s", c, p)
	}
}

// TestTraffic runs Traffic against a server that records what it gets.
func TestTraffic(t *testing.T) {
	type request struct {
		method, path, user, country, plan, status string
	}
	var (
		mu   sync.Mutex
		reqs []request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Status string }
		if r.Method == http.MethodPut {
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("body %q: %v", b, err)
			}
		}
		mu.Lock()
		reqs = append(reqs, request{r.Method, r.URL.Path, r.Header.Get("X-User-ID"), r.Header.Get("X-Country"), r.Header.Get("X-Plan"), body.Status})
		mu.Unlock()
	}))
	defer srv.Close()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(reqs)
	}

	opts := TrafficOptions{Rate: 1000, Users: 20}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Traffic(ctx, srv.URL, opts)
	}()
	testutil.Eventually(t, 20*time.Second, func() string {
		if n := count(); n < 500 {
			return strconv.Itoa(n) + " requests"
		}
		return ""
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Traffic still running 5s after its context ended")
	}
	stopped := count()
	time.Sleep(100 * time.Millisecond)
	if n := count(); n != stopped {
		t.Errorf("%d requests after Traffic returned", n-stopped)
	}

	mu.Lock()
	defer mu.Unlock()
	var testers, writes int
	reads := regexp.MustCompile(`^/orders/[1-5]$`)
	writesTo := regexp.MustCompile(`^/orders/[6-8]/status$`)
	for _, r := range reqs {
		if c, p := UserAttrs(r.user, opts); r.country != c || r.plan != p {
			t.Fatalf("user %s sent country %q plan %q, want %q %q", r.user, r.country, r.plan, c, p)
		}
		switch id, _ := strconv.Atoi(r.user); {
		case r.user == "123" || r.user == "456":
			testers++
		case id < 1000 || id >= 1000+opts.Users:
			t.Errorf("unexpected user %q", r.user)
		}
		switch r.method {
		case http.MethodGet:
			if !reads.MatchString(r.path) {
				t.Errorf("read of %s", r.path)
			}
		case http.MethodPut:
			writes++
			if !writesTo.MatchString(r.path) || !validStatus(r.status) {
				t.Errorf("write of %q to %s", r.status, r.path)
			}
		default:
			t.Errorf("method %s", r.method)
		}
	}
	share := func(n int) float64 { return float64(n) / float64(len(reqs)) }
	if s := share(testers); s < 0.04 || s > 0.2 {
		t.Errorf("the testing group sent %.1f%% of the requests, want about 10%%", 100*s)
	}
	if s := share(writes); s < 0.09 || s > 0.2 {
		t.Errorf("writes were %.1f%% of the requests, want about 1 in 7", 100*s)
	}
	if !slices.ContainsFunc(reqs, func(r request) bool { return r.country == "IN" }) {
		t.Error("no request from IN")
	}
}
