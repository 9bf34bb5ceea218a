package verifier

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPHeadersBounded: the verifier's HTTP server refuses headers over
// maxHeaderBytes with 431.
func TestHTTPHeadersBounded(t *testing.T) {
	srv, err := serveHTTP("127.0.0.1:0", NewMetrics(nil, Options{}, func() []*Worker { return nil }), nil, func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, tt := range []struct {
		pad  int
		want int
	}{{2 * maxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge}, {maxHeaderBytes / 2, http.StatusOK}} {
		req, _ := http.NewRequest("GET", "http://"+srv.Addr+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("a", tt.pad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%d bytes of headers: %d, want %d", tt.pad, resp.StatusCode, tt.want)
		}
	}
}
