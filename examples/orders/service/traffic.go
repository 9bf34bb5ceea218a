package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TrafficOptions configures [Traffic] and [UserAttrs]. The zero value is
// valid; every default is documented on its field.
type TrafficOptions struct {
	// Rate is how many requests a second Traffic sends. Defaults to 50.
	Rate int
	// Users is how many distinct users, besides the testing group, send
	// requests: "1000", "1001", and so on. Defaults to 500.
	Users int
	// Countries and Plans are the values a user's country and plan are
	// chosen from, by [UserAttrs]. Default to IN, US, DE, BR and free, pro.
	Countries []string
	Plans     []string
	// WriteEvery makes every Nth request a status write. Defaults to 7;
	// negative sends only reads.
	WriteEvery int
	// TestingGroup are users who send about one request in ten between
	// them, all from country US. nil means "123" and "456", the testing
	// group of [DefaultRollout]; an empty non-nil slice means none.
	TestingGroup []string
}

// Defaults of [TrafficOptions].
const (
	DefaultTrafficRate = 50
	DefaultUsers       = 500
	DefaultWriteEvery  = 7
)

// maxInFlight caps the requests Traffic has waiting for an answer; a tick
// that finds this many is skipped.
const maxInFlight = 64

func (o TrafficOptions) withDefaults() TrafficOptions {
	if o.Rate <= 0 {
		o.Rate = DefaultTrafficRate
	}
	if o.Users <= 0 {
		o.Users = DefaultUsers
	}
	if len(o.Countries) == 0 {
		o.Countries = []string{"IN", "US", "DE", "BR"}
	}
	if len(o.Plans) == 0 {
		o.Plans = []string{"free", "pro"}
	}
	if o.WriteEvery == 0 {
		o.WriteEvery = DefaultWriteEvery
	}
	if o.TestingGroup == nil {
		o.TestingGroup = []string{"123", "456"}
	}
	return o
}

// UserAttrs returns the country and plan [Traffic] sends for user: the
// testing group is in US, other users in one of opts.Countries; each user
// has one of opts.Plans. They depend only on the user id and the lists
// (through SHA-256 of the id, unrelated to Parity's percentage buckets), so
// a user's flag evaluation is the same on every request.
func UserAttrs(user string, opts TrafficOptions) (country, plan string) {
	opts = opts.withDefaults()
	sum := sha256.Sum256([]byte(user))
	h := binary.BigEndian.Uint64(sum[:8])
	plan = opts.Plans[h%uint64(len(opts.Plans))]
	if slices.Contains(opts.TestingGroup, user) {
		return "US", plan
	}
	h /= uint64(len(opts.Plans))
	return opts.Countries[h%uint64(len(opts.Countries))], plan
}

// Traffic sends opts.Rate requests a second to the service at base (such as
// "http://127.0.0.1:8081") until ctx ends, as users of the rollout's
// segments would. Each request is from a random user, a member of the
// testing group about one time in ten, with the headers X-User-ID,
// X-Country and X-Plan as [UserAttrs] gives them. Every opts.WriteEvery-th
// request sets the status of order 6, 7 or 8; the others read order 1 to 5.
//
// Reads and writes touch different orders on purpose: a read racing a dual
// write of the same order can see the old database updated and the new one
// not yet, and a write made in the off stage reaches the old database only.
// Both are real divergences that Parity would report, but not the ones this
// traffic is meant to show; with identical seeds, it produces none.
//
// Requests run concurrently, at most 64 at a time; a tick that finds 64
// unanswered is skipped. Transport errors are logged, and so is a base that
// is not a URL, on which Traffic returns at once. Otherwise it returns once
// ctx has ended and the requests in flight then have been answered (each
// within 5s): they are not cancelled, since a request cancelled halfway
// would leave a call half done.
func Traffic(ctx context.Context, base string, opts TrafficOptions) {
	opts = opts.withDefaults()
	base = strings.TrimSuffix(base, "/")
	interval := max(time.Second/time.Duration(opts.Rate), time.Microsecond)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = maxInFlight
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: transport}
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		// A request in flight is not cancelled with ctx: its answer is
		// awaited (for up to the client's 5s), so that stopping the traffic
		// does not leave calls half done.
		req, err := opts.request(context.WithoutCancel(ctx), base, n)
		if err != nil {
			<-sem
			slog.Error("orders: traffic", "err", err)
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := client.Do(req)
			if err != nil {
				slog.Warn("orders: traffic", "err", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
}

var trafficStatuses = []string{"pending", "paid", "shipped", "cancelled"}

// request builds the nth request.
func (o TrafficOptions) request(ctx context.Context, base string, n int) (*http.Request, error) {
	var user string
	if len(o.TestingGroup) > 0 && rand.IntN(10) == 0 {
		user = o.TestingGroup[rand.IntN(len(o.TestingGroup))]
	} else {
		user = strconv.Itoa(1000 + rand.IntN(o.Users))
	}
	var (
		req *http.Request
		err error
	)
	if o.WriteEvery > 0 && n%o.WriteEvery == 0 {
		body := fmt.Sprintf(`{"status":%q}`, trafficStatuses[rand.IntN(len(trafficStatuses))])
		req, err = http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/orders/%d/status", base, 6+rand.IntN(3)), strings.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/orders/%d", base, 1+rand.IntN(5)), nil)
	}
	if err != nil {
		return nil, err
	}
	country, plan := UserAttrs(user, o)
	req.Header.Set("X-User-ID", user)
	req.Header.Set("X-Country", country)
	req.Header.Set("X-Plan", plan)
	return req, nil
}
