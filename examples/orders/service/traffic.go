package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// traffic sends rate requests per second to the service at base, as users of
// the rollout's segments would: the testing group (123, 456), users in IN,
// US, DE and BR on free and pro plans; mostly reads of the five seeded
// orders, some status writes. It stops when ctx ends.
func traffic(ctx context.Context, base string, rate int) {
	countries, plans := []string{"IN", "US", "DE", "BR"}, []string{"free", "pro"}
	states := []string{"paid", "shipped", "delivered"}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	client := &http.Client{Timeout: 5 * time.Second}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		user := fmt.Sprint(1000 + rand.IntN(500))
		if n%10 == 0 {
			user = []string{"123", "456"}[n/10%2]
		}
		order := 1 + rand.IntN(5)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/orders/%d", base, order), nil)
		if n%7 == 0 {
			body := fmt.Sprintf(`{"status":%q}`, states[rand.IntN(len(states))])
			req, _ = http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/orders/%d/status", base, 1+rand.IntN(3)), strings.NewReader(body))
		}
		req.Header.Set("X-User-ID", user)
		req.Header.Set("X-Country", countries[rand.IntN(len(countries))])
		req.Header.Set("X-Plan", plans[rand.IntN(len(plans))])
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("orders: traffic", "err", err)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
