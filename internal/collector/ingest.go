package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/publish"
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
	// window is the range of pair times accepted, as the verifiers accept
	// them: a pair outside it is rejected here rather than dead-lettered.
	window verifier.TimeWindow

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
		// NDJSON: a line that is not a JSON object is rejected as an item,
		// but a body none of whose lines is one is no NDJSON at all (a
		// stray digit in random bytes is JSON, but no envelope).
		anyJSON := false
		for line := range bytes.SplitSeq(trimmed, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				items = append(items, line)
				anyJSON = anyJSON || line[0] == '{' && json.Valid(line)
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
	// Valid pairs are published in batch envelopes, one subject at a time,
	// as the Go hook sends them; an item's status is its batch's.
	now := time.Now()
	bySubject := map[string][]int{}
	var subjects []string
	for i, raw := range items {
		it := &resp.Items[i]
		it.Index = i
		p, err := envelope.Decode(raw)
		if err == nil && in.window != (verifier.TimeWindow{}) {
			err = in.window.Check(p.Time, now)
		}
		if err != nil {
			it.Status, it.Error = "rejected", err.Error()
			continue
		}
		it.ID = p.ID
		subj := p.Subject()
		if bySubject[subj] == nil {
			subjects = append(subjects, subj)
		}
		bySubject[subj] = append(bySubject[subj], i)
	}
	type sent struct {
		future  jetstream.PubAckFuture
		members []int
	}
	var batches []sent
	bw := envelope.NewBatchWriter(publish.DefaultBatchPairs, publish.DefaultBatchBytes)
	send := func(subj string, members []int) {
		data, id := bw.Finish()
		m := nats.NewMsg(subj)
		m.Data = append([]byte(nil), data...)
		m.Header.Set(jetstream.MsgIDHeader, id)
		bw.Reset(data[:0])
		f, err := in.js.PublishMsgAsync(m)
		if err != nil {
			for _, i := range members {
				resp.Items[i].Status, resp.Items[i].Error = "failed", "publish: "+err.Error()
			}
			return
		}
		batches = append(batches, sent{f, members})
	}
	for _, subj := range subjects {
		var members []int
		for _, i := range bySubject[subj] {
			if errors.Is(bw.AddEncoded(items[i], resp.Items[i].ID), envelope.ErrBatchFull) {
				send(subj, members)
				members = nil
				_ = bw.AddEncoded(items[i], resp.Items[i].ID) // fits an empty batch
			}
			members = append(members, i)
		}
		send(subj, members)
	}
	for _, b := range batches {
		status, msg := "accepted", ""
		select {
		case <-b.future.Ok():
		case err := <-b.future.Err():
			status, msg = "failed", "publish: "+err.Error()
		case <-ctx.Done():
			status, msg = "failed", "publish: no acknowledgement from JetStream in time"
		}
		for _, i := range b.members {
			resp.Items[i].Status, resp.Items[i].Error = status, msg
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
