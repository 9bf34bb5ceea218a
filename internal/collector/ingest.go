package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/pkg/envelope"
)

// Limits of one ingest request.
const (
	MaxIngestBytes = 10 << 20 // 10 MiB per request body
	MaxIngestItems = 10_000   // pairs per request
)

// ingester serves POST /api/v1/pairs: applications not written in Go publish
// pairs over HTTP. Items are validated exactly like the NATS path and
// published to JetStream; an item counts as accepted only once JetStream has
// stored it.
type ingester struct {
	js jetstream.JetStream

	accepted, rejected, failed atomic.Uint64
}

// IngestItem is the outcome of one item of an ingest request.
type IngestItem struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Status string `json:"status"` // accepted, rejected (bad input: do not retry) or failed (retry)
	Error  string `json:"error,omitempty"`
}

// IngestResponse answers an ingest request, item by item.
type IngestResponse struct {
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Failed   int          `json:"failed"`
	Items    []IngestItem `json:"items"`
}

func (in *ingester) handle(c echo.Context) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err // the body limit answers 413 itself
	}
	items, err := splitItems(body)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "body: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	resp := in.publish(ctx, items)
	code := http.StatusOK
	if resp.Failed > 0 {
		code = http.StatusServiceUnavailable
	}
	return c.JSON(code, resp)
}

// splitItems reads a JSON array of envelopes or NDJSON (one per line).
func splitItems(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("empty: send a JSON array of pairs or one pair per line (NDJSON)")
	}
	var items []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("not a valid JSON array of pairs: %v", err)
		}
	} else {
		// NDJSON: a line that is not JSON is rejected as an item, but a
		// body none of whose lines is JSON is no NDJSON at all.
		anyJSON := false
		for line := range bytes.SplitSeq(trimmed, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				items = append(items, line)
				anyJSON = anyJSON || json.Valid(line)
			}
		}
		if !anyJSON {
			return nil, fmt.Errorf("not JSON: send a JSON array of pairs or one pair per line (NDJSON)")
		}
	}
	switch {
	case len(items) == 0:
		return nil, fmt.Errorf("no pairs")
	case len(items) > MaxIngestItems:
		return nil, fmt.Errorf("%d pairs; at most %d per request", len(items), MaxIngestItems)
	}
	return items, nil
}

func (in *ingester) publish(ctx context.Context, items []json.RawMessage) IngestResponse {
	resp := IngestResponse{Items: make([]IngestItem, len(items))}
	futures := make([]jetstream.PubAckFuture, len(items))
	for i, raw := range items {
		it := &resp.Items[i]
		it.Index = i
		p, err := envelope.Decode(raw)
		if err != nil {
			it.Status, it.Error = "rejected", err.Error()
			continue
		}
		it.ID = p.ID
		m := nats.NewMsg(p.Subject())
		m.Data = raw
		m.Header.Set(jetstream.MsgIDHeader, p.ID)
		f, err := in.js.PublishMsgAsync(m)
		if err != nil {
			it.Status, it.Error = "failed", "publish: "+err.Error()
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		it := &resp.Items[i]
		select {
		case <-f.Ok():
			it.Status = "accepted"
		case err := <-f.Err():
			it.Status, it.Error = "failed", "publish: "+err.Error()
		case <-ctx.Done():
			it.Status, it.Error = "failed", "publish: no acknowledgement from JetStream in time"
		}
	}
	for _, it := range resp.Items {
		switch it.Status {
		case "accepted":
			resp.Accepted++
		case "rejected":
			resp.Rejected++
		default:
			resp.Failed++
		}
	}
	in.accepted.Add(uint64(resp.Accepted))
	in.rejected.Add(uint64(resp.Rejected))
	in.failed.Add(uint64(resp.Failed))
	return resp
}
