package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
	segmentdef "github.com/parityhq/parity/pkg/segment"
)

// The flood's experiments. Bad envelopes name floodExperiment (or an invalid
// name); gapExperiment carries envelopes that lack a field the wire format
// documents as required, so that, should one be counted instead of refused,
// it shows up as an experiment of its own instead of skewing the good counts.
const (
	floodExperiment = "e2e-flood"
	gapExperiment   = "e2e-flood-gap"
	ghostExperiment = "e2e-flood-ghost" // named only by envelopes on a foreign subject
	floodToken      = "ingest-token-0123456789"
)

// badKind is one way an envelope can be wrong.
type badKind struct {
	name string
	// want is a substring the dead letter's reason or the ingest item's
	// error must contain (case-insensitive): the reason names the problem.
	want string
	// via says which paths send it: "nats", "http" or "" for both. Over
	// HTTP every kind travels as an NDJSON line; array marks the kinds that
	// are valid JSON and so can also travel inside a JSON array body.
	via   string
	array bool
	// make returns the payload for id and, over NATS, the subject to
	// publish it on ("" means the flood experiment's GetOrder subject).
	make func(id string) (data []byte, subject string)
}

// floodEnvelope is a valid envelope of the flood experiment as a map that a
// kind edits before encoding it.
func floodEnvelope(id string) map[string]any {
	return map[string]any{
		"version": 1, "id": id, "experiment": floodExperiment, "operation": "GetOrder",
		"kind": "read", "time": time.Now().UTC().Format(time.RFC3339Nano), "stage": "shadow",
		"user":      map[string]any{"key": "user-" + id, "attrs": map[string]any{"country": "IN", "plan": "pro"}},
		"control":   map[string]any{"value": map[string]any{"id": 1, "status": "paid"}, "duration_ns": 1000},
		"candidate": map[string]any{"value": map[string]any{"id": 1, "status": "paid"}, "duration_ns": 900},
	}
}

// edit returns a kind's make function for a valid envelope changed by f.
func edit(f func(m map[string]any)) func(string) ([]byte, string) {
	return func(id string) ([]byte, string) {
		m := floodEnvelope(id)
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			panic(err) // the table below only builds encodable maps
		}
		return b, ""
	}
}

// raw returns a kind's make function for a fixed payload with the id
// substituted for ID, so that each copy is distinct.
func raw(s string) func(string) ([]byte, string) {
	return func(id string) ([]byte, string) { return []byte(strings.ReplaceAll(s, "ID", id)), "" }
}

// onSubject publishes f's payload on subject instead.
func onSubject(subject string, f func(string) ([]byte, string)) func(string) ([]byte, string) {
	return func(id string) ([]byte, string) { b, _ := f(id); return b, subject }
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// padded returns a payload of exactly n bytes that starts like an envelope.
func padded(id string, n int) []byte {
	head := `{"version":1,"id":"` + id + `","experiment":"` + floodExperiment + `","control":{"value":"`
	tail := `"}}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// badKinds lists the flood's bad envelopes. maxPayload is the NATS
// server's max_payload.
func badKinds(maxPayload int) []badKind {
	floodSubject := envelope.Subject(floodExperiment, "GetOrder")
	deep := func(open, close string, n int) func(string) ([]byte, string) {
		return raw(`{"version":1,"id":"ID","experiment":"` + floodExperiment + `","control":{"value":` +
			strings.Repeat(open, n) + `1` + strings.Repeat(close, n) + `}}`)
	}
	deepArray := raw(`{"version":1,"id":"ID","control":{"value":` + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + `}}`)
	name := func(field, value string) func(map[string]any) { return func(m map[string]any) { m[field] = value } }
	badName := func(field, value, subject string) badKind {
		k := badKind{name: field + " " + fmt.Sprintf("%.20q", value), want: "field " + field, array: true, make: edit(name(field, value))}
		if subject != "" {
			k.make = onSubject(subject, k.make)
		}
		return k
	}
	without := func(field string) badKind {
		return badKind{name: "missing " + field, want: "field " + field, array: true, make: edit(func(m map[string]any) { delete(m, field) })}
	}
	// A documented-required part of an observation left out, in the gap
	// experiment (see gapExperiment).
	gap := func(name, want string, f func(m map[string]any)) badKind {
		return badKind{name: name, want: want, array: true, make: func(id string) ([]byte, string) {
			b, _ := edit(func(m map[string]any) { m["experiment"] = gapExperiment; f(m) })(id)
			return b, envelope.Subject(gapExperiment, "GetOrder")
		}}
	}
	return []badKind{
		// Not JSON, or not UTF-8.
		{name: "truncated JSON", want: "not valid JSON", make: raw(`{"version":1,"id":"ID","experiment":`)},
		{name: "plain text", want: "not valid JSON", make: raw(`hello ID, this is not an envelope`)},
		{name: "trailing garbage", want: "not valid JSON", make: func(id string) ([]byte, string) {
			b, _ := edit(func(map[string]any) {})(id)
			return append(b, " }{"...), ""
		}},
		{name: "empty payload", want: "not valid JSON", via: "nats", make: raw(``)},
		{name: "invalid UTF-8", want: "UTF-8", make: func(id string) ([]byte, string) {
			b, _ := edit(func(m map[string]any) { sub(m, "user")["key"] = "INVALID" })(id)
			return bytes.Replace(b, []byte("INVALID"), []byte("bad\xff\xfe"), 1), ""
		}},
		{name: "UTF-16 with BOM", want: "UTF-8", make: func(id string) ([]byte, string) {
			b, _ := edit(func(map[string]any) {})(id)
			out := []byte{0xff, 0xfe}
			for _, c := range b {
				out = append(out, c, 0)
			}
			return out, ""
		}},
		{name: "10,000-level array nesting", want: "depth", make: deepArray},
		{name: "10,001-level object nesting", want: "depth", make: deep(`{"a":`, `}`, 10_001)},

		// Versions.
		{name: "version 3", want: "unsupported version 3", array: true, make: edit(func(m map[string]any) { m["version"] = 3 })},
		// Version 2 is a batch: a pair marked 2 is a batch without pairs
		// over NATS, and not a pair over HTTP, which takes pairs only.
		{name: "version 2 over NATS", want: "field pairs: missing", via: "nats", make: edit(func(m map[string]any) { m["version"] = 2 })},
		{name: "version 2 over HTTP", want: "unsupported version 2 (a pair is version 1", via: "http", array: true, make: edit(func(m map[string]any) { m["version"] = 2 })},
		{name: "version 0", want: "unsupported version", array: true, make: edit(func(m map[string]any) { m["version"] = 0 })},
		{name: "version string", want: "unsupported version", array: true, make: edit(func(m map[string]any) { m["version"] = "1" })},
		{name: "version 1.5", want: "unsupported version", array: true, make: edit(func(m map[string]any) { m["version"] = 1.5 })},
		{name: "version null", want: "field version", array: true, make: edit(func(m map[string]any) { m["version"] = nil })},
		without("version"),

		// Missing fields.
		without("id"), without("experiment"), without("operation"), without("kind"), without("time"), without("stage"),
		gap("missing control", "field control", func(m map[string]any) { delete(m, "control") }),
		gap("missing candidate", "field candidate", func(m map[string]any) { delete(m, "candidate") }),
		gap("missing control.duration_ns", "field control.duration_ns", func(m map[string]any) { delete(sub(m, "control"), "duration_ns") }),
		{name: "empty object", want: "field version", array: true, make: raw(`{}`)},

		// Wrong types.
		{name: "id number", want: "field id", array: true, make: edit(func(m map[string]any) { m["id"] = 7 })},
		{name: "experiment number", want: "field experiment", array: true, make: edit(func(m map[string]any) { m["experiment"] = 1 })},
		{name: "user string", want: "field user", array: true, make: edit(func(m map[string]any) { m["user"] = "u" })},
		{name: "attr number", want: "field user.attrs", array: true, make: edit(func(m map[string]any) { sub(m, "user")["attrs"] = map[string]any{"country": 1} })},
		{name: "control array", want: "field control", array: true, make: edit(func(m map[string]any) { m["control"] = []int{1} })},
		{name: "duration string", want: "field control.duration_ns", array: true, make: edit(func(m map[string]any) { sub(m, "control")["duration_ns"] = "5" })},
		{name: "duration 1e30", want: "field candidate.duration_ns", array: true, make: edit(func(m map[string]any) { sub(m, "candidate")["duration_ns"] = 1e30 })},
		{name: "time number", want: "time", array: true, make: edit(func(m map[string]any) { m["time"] = 12345 })},
		{name: "time text", want: "RFC 3339", array: true, make: edit(func(m map[string]any) { m["time"] = "yesterday" })},
		{name: "kind bool", want: "field kind", array: true, make: edit(func(m map[string]any) { m["kind"] = true })},
		{name: "top-level array", want: "wrong type", array: true, make: raw(`["ID"]`)},
		{name: "top-level string", want: "wrong type", array: true, make: raw(`"ID"`)},
		{name: "top-level null", want: "field version", array: true, make: raw(`null`)},

		// Unknown kinds, stages and other enumerations.
		{name: "kind delete", want: "field kind", array: true, make: edit(name("kind", "delete"))},
		{name: "stage canary", want: "field stage", array: true, make: edit(name("stage", "canary"))},
		{name: "status weird", want: "field control.status", array: true, make: edit(func(m map[string]any) { sub(m, "control")["status"] = "weird" })},
		{name: "error status without text", want: "field candidate.error", array: true, make: edit(func(m map[string]any) { sub(m, "candidate")["status"] = "error" })},
		{name: "mode bb", want: "field mode", array: true, make: edit(name("mode", "bb"))},
		{name: "client verdict maybe", want: "field client_verdict", array: true, make: edit(name("client_verdict", "maybe"))},

		// Limits.
		{name: "id too long", want: "field id", array: true, make: edit(func(m map[string]any) { m["id"] = m["id"].(string) + strings.Repeat("i", 129) })},
		{name: "id with a space", want: "field id", array: true, make: edit(func(m map[string]any) { m["id"] = m["id"].(string) + " x" })},
		{name: "user key too long", want: "field user.key", array: true, make: edit(func(m map[string]any) { sub(m, "user")["key"] = strings.Repeat("k", 257) })},
		{name: "17 attributes", want: "field user.attrs", array: true, make: edit(func(m map[string]any) {
			attrs := map[string]any{}
			for i := range 17 {
				attrs[fmt.Sprintf("a%d", i)] = "v"
			}
			sub(m, "user")["attrs"] = attrs
		})},
		{name: "attribute value too long", want: "field user.attrs.plan", array: true, make: edit(func(m map[string]any) {
			sub(m, "user")["attrs"] = map[string]any{"country": "IN", "plan": strings.Repeat("p", 129)}
		})},
		{name: "attribute name with a dot", want: "field user.attrs", array: true, make: edit(func(m map[string]any) { sub(m, "user")["attrs"] = map[string]any{"a.b": "v"} })},
		{name: "error too long", want: "field control.error", array: true, make: edit(func(m map[string]any) { sub(m, "control")["error"] = strings.Repeat("e", 4097) })},
		{name: "negative duration", want: "field control.duration_ns", array: true, make: edit(func(m map[string]any) { sub(m, "control")["duration_ns"] = -1 })},
		{name: "flag variant of 129 bytes", want: "field flag.variant", array: true, make: edit(func(m map[string]any) {
			m["flag"] = map[string]any{"key": "stage", "variant": randomHex(129), "reason": "TARGETING_MATCH"}
		})},
		{name: "flag reason of 3,000 bytes", want: "field flag.reason", array: true, make: edit(func(m map[string]any) {
			m["flag"] = map[string]any{"key": "stage", "variant": "shadow", "reason": randomHex(3000)}
		})},
		{name: "flag key of 100 KB", want: "field flag.key", array: true, make: edit(func(m map[string]any) {
			m["flag"] = map[string]any{"key": randomHex(100_000), "variant": "shadow", "reason": "TARGETING_MATCH"}
		})},

		// Invalid experiment and operation names, published where a naive
		// producer would put them (or on a valid subject where the name
		// cannot be part of one).
		badName("experiment", "", ""),
		badName("experiment", "a.b", envelope.Subject("a.b", "GetOrder")),
		badName("experiment", "has space", ""),
		badName("experiment", strings.Repeat("e", 65), envelope.Subject(strings.Repeat("e", 65), "GetOrder")),
		badName("experiment", "ünïcode", envelope.Subject("ünïcode", "GetOrder")),
		badName("experiment", "a*b", ""),
		badName("experiment", "a>b", ""),
		badName("experiment", "../etc", ""),
		badName("experiment", "nul\x00byte", ""),
		badName("operation", "", ""),
		badName("operation", "Get.Order", envelope.Subject(floodExperiment, "Get.Order")),

		// Valid envelopes on a subject that is not theirs (NATS only: over
		// HTTP the collector picks the subject).
		{name: "on a ghost experiment's subject", want: "published on subject", via: "nats", make: onSubject(envelope.Subject(ghostExperiment, "GetOrder"), edit(func(map[string]any) {}))},
		{name: "ghost envelope on the flood subject", want: "published on subject", via: "nats", make: onSubject(floodSubject, edit(name("experiment", ghostExperiment)))},
		{name: "on another operation's subject", want: "published on subject", via: "nats", make: onSubject(envelope.Subject(floodExperiment, "ListOrders"), edit(func(map[string]any) {}))},
		{name: "on a short subject", want: "published on subject", via: "nats", make: onSubject(envelope.SubjectPrefix+"."+floodExperiment, edit(func(map[string]any) {}))},
		{name: "on a long subject", want: "published on subject", via: "nats", make: onSubject(floodSubject+".extra", edit(func(map[string]any) {}))},
		{name: "on an upper-case subject", want: "published on subject", via: "nats", make: onSubject(envelope.Subject(strings.ToUpper(floodExperiment), "GetOrder"), edit(func(map[string]any) {}))},

		// Too large. Over NATS, a payload of the server's whole max_payload;
		// over HTTP, one item just over the envelope limit in a small body.
		{name: "NATS max_payload", want: "larger than", via: "nats", make: func(id string) ([]byte, string) { return padded(id, maxPayload), "" }},
		{name: "one byte over the envelope limit", want: "larger than", make: func(id string) ([]byte, string) { return padded(id, envelope.MaxSize+1), "" }},
	}
}

// maxPayloadCopies is how many max_payload envelopes the NATS flood sends:
// enough bytes (48 MiB with the default 1 MiB max_payload) that a verifier
// keeping them would break the memory bound below.
const maxPayloadCopies = 48

// expectation is what should become of one bad envelope.
type expectation struct{ kind, want string }

// deadLetterKey identifies a dead letter by its subject and the part of the
// payload the store keeps.
func deadLetterKey(subject string, data []byte) [32]byte {
	data = data[:min(len(data), store.MaxDeadLetterBytes)]
	return sha256.Sum256(append([]byte(subject+"\x00"), data...))
}

func tally(want map[string]counts, p *envelope.Pair, divergent bool) {
	key := "country=" + p.User.Attrs["country"] + ",plan=" + p.User.Attrs["plan"]
	c := want[key]
	c.pairs++
	if divergent {
		c.divergent++
	}
	want[key] = c
}

// ingestPost sends body to POST /api/v1/pairs with the flood's token. A body
// whose length net/http cannot tell (not a *bytes.Reader, for example) is
// sent chunked, without Content-Length.
func ingestPost(t *testing.T, app *collector.App, body io.Reader, contentType string) (int, collector.IngestResponse, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, app.URL()+"/api/v1/pairs", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+floodToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST /api/v1/pairs: %v", err)
		return 0, collector.IngestResponse{}, ""
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var r collector.IngestResponse
	_ = json.Unmarshal(out, &r)
	return resp.StatusCode, r, string(out)
}

// heapInuse returns the heap in use after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle frees what finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// floodTruth hands out the good pairs of both floods and keeps their counts.
type floodTruth struct {
	mu   sync.Mutex
	now  time.Time
	next int
	want map[string]counts
}

// good returns the next good pair, encoded; every tenth carries a field this
// version does not know, which a verifier must ignore.
func (f *floodTruth) good() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, divergent := makePair(floodExperiment, f.next, f.now)
	tally(f.want, p, divergent)
	f.next++
	b, err := envelope.Marshal(p)
	if err != nil {
		panic(err) // makePair's pairs are valid
	}
	if f.next%10 == 0 {
		b = append([]byte(`{"added_in_version_1_1":{"x":[1,2]},`), b[1:]...)
	}
	return b
}

func (f *floodTruth) counts() (map[string]counts, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.want), f.next
}

// goodMsg returns a NATS message for an encoded good pair, on its subject and
// with its id as Nats-Msg-Id, as the Go hook sends it.
func goodMsg(b []byte) *nats.Msg {
	var head struct{ ID, Experiment, Operation string }
	_ = json.Unmarshal(b, &head)
	return &nats.Msg{Subject: envelope.Subject(head.Experiment, head.Operation), Data: b, Header: nats.Header{jetstream.MsgIDHeader: {head.ID}}}
}

// natsFlood publishes n bad envelopes, each kind in turn with
// maxPayloadCopies max_payload ones spread among them, and a good pair after
// every third. Every publish is a JetStream publish whose ack is checked, so
// each envelope is known to be stored; bad ones carry no Nats-Msg-Id, like a
// careless producer's. It returns what should become of each bad
// envelope, by dead-letter key, and the bytes sent.
func natsFlood(t *testing.T, js jetstream.JetStream, kinds []badKind, truth *floodTruth, n int) (map[[32]byte][]expectation, int) {
	var natsKinds []badKind
	var maxPayload badKind
	for _, k := range kinds {
		switch {
		case k.name == "NATS max_payload":
			maxPayload = k
		case k.via != "http":
			natsKinds = append(natsKinds, k)
		}
	}
	expected := map[[32]byte][]expectation{}
	sent := 0
	var futures []jetstream.PubAckFuture
	publish := func(m *nats.Msg) {
		sent += len(m.Data)
		for {
			f, err := js.PublishMsgAsync(m)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				<-js.PublishAsyncComplete()
				continue
			}
			if err != nil {
				t.Errorf("NATS flood: publish to %s: %v", m.Subject, err)
				return
			}
			futures = append(futures, f)
			return
		}
	}
	every := n / maxPayloadCopies
	for i := range n {
		k := natsKinds[i%len(natsKinds)]
		if i%every == 0 && i/every < maxPayloadCopies {
			k = maxPayload
		}
		data, subject := k.make(fmt.Sprintf("bad-nats-%d", i))
		if subject == "" {
			subject = envelope.Subject(floodExperiment, "GetOrder")
		}
		key := deadLetterKey(subject, data)
		expected[key] = append(expected[key], expectation{k.name, k.want})
		publish(&nats.Msg{Subject: subject, Data: data})
		if i%3 == 2 {
			publish(goodMsg(truth.good()))
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Errorf("NATS flood: %d publishes unacknowledged after 30s", js.PublishAsyncPending())
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Errorf("NATS flood: %d bytes on %s not stored: %v", len(f.Msg().Data), f.Msg().Subject, err)
		default:
			t.Errorf("NATS flood: %d bytes on %s: no answer", len(f.Msg().Data), f.Msg().Subject)
		}
	}
	return expected, sent
}

// httpFlood posts n bad items in bodies of about 100, NDJSON and JSON arrays
// in turn, with a good pair after every third bad one, and checks each item's
// answer. It returns the bytes sent.
func httpFlood(t *testing.T, app *collector.App, kinds []badKind, truth *floodTruth, n int) int {
	var ndjsonKinds, arrayKinds []badKind
	for _, k := range kinds {
		if k.via != "nats" {
			ndjsonKinds = append(ndjsonKinds, k)
			if k.array {
				arrayKinds = append(arrayKinds, k)
			}
		}
	}
	type item struct {
		data []byte
		bad  *expectation // nil: a good pair
	}
	sent, b := 0, 0
	var items []item
	var wrong mismatches
	post := func() {
		parts := make([][]byte, len(items))
		for i, it := range items {
			parts[i] = it.data
		}
		payload, contentType := bytes.Join(parts, []byte("\n")), "application/x-ndjson"
		if b%2 == 1 {
			payload, contentType = slices.Concat([]byte("["), bytes.Join(parts, []byte(",")), []byte("]")), "application/json"
		}
		sent += len(payload)
		code, r, raw := ingestPost(t, app, bytes.NewReader(payload), contentType)
		if code != http.StatusOK || len(r.Items) != len(items) || r.Failed != 0 {
			t.Errorf("HTTP flood: body %d (%s, %d items): status %d, %d answers, %d failed: %.300s", b, contentType, len(items), code, len(r.Items), r.Failed, raw)
			return
		}
		for i, it := range items {
			got := r.Items[i]
			switch {
			case it.bad == nil && got.Status != "accepted":
				wrong.add("good pair "+got.Status, fmt.Sprintf("body %d item %d: %+v", b, i, got))
			case it.bad != nil && (got.Status != "rejected" || !strings.Contains(strings.ToLower(got.Error), strings.ToLower(it.bad.want))):
				wrong.add(it.bad.kind+" "+got.Status, fmt.Sprintf("body %d item %d: %+v, want rejected with an error containing %q", b, i, got, it.bad.want))
			}
		}
	}
	for i := range n {
		ks := ndjsonKinds
		if b%2 == 1 {
			ks = arrayKinds
		}
		k := ks[i%len(ks)]
		data, _ := k.make(fmt.Sprintf("bad-http-%d", i))
		items = append(items, item{data: data, bad: &expectation{k.name, k.want}})
		if i%3 == 2 {
			items = append(items, item{data: truth.good()})
		}
		if len(items) >= 100 || i == n-1 {
			post()
			items, b = nil, b+1
		}
	}
	if msg := wrong.String(); msg != "" {
		t.Errorf("HTTP flood: items answered wrongly:\n%s", msg)
	}
	return sent
}

// httpBodies checks answers to whole bodies: over the size limit 413, with or
// without Content-Length; exactly at it read; not a list of pairs 400. It
// returns the bytes sent.
func httpBodies(t *testing.T, app *collector.App, truth *floodTruth) int {
	big := bytes.Repeat([]byte("\n"), collector.MaxIngestBytes+1)
	if code, _, raw := ingestPost(t, app, bytes.NewReader(big), "application/x-ndjson"); code != http.StatusRequestEntityTooLarge {
		t.Errorf("body of %d bytes with Content-Length: %d %.200s, want 413", len(big), code, raw)
	}
	if code, _, raw := ingestPost(t, app, struct{ io.Reader }{bytes.NewReader(big)}, "application/x-ndjson"); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body of %d bytes: %d %.200s, want 413", len(big), code, raw)
	}
	g1, g2 := truth.good(), truth.good()
	atLimit := slices.Concat(g1, []byte("\n"), bytes.Repeat([]byte(" "), collector.MaxIngestBytes-len(g1)-len(g2)-1), g2)
	if code, r, raw := ingestPost(t, app, bytes.NewReader(atLimit), "application/x-ndjson"); code != http.StatusOK || r.Accepted != 2 {
		t.Errorf("body of exactly %d bytes: %d %.200s, want 200 with 2 accepted", len(atLimit), code, raw)
	}
	for name, body := range map[string][]byte{
		"empty":               nil,
		"whitespace":          []byte(" \n\t\r\n "),
		"truncated array":     []byte(`[{"version":1,"id":"x"},`),
		"empty array":         []byte(`[]`),
		"array with garbage":  []byte(`[{"version":1}, garbage]`),
		"array then garbage":  []byte(`[{}] trailing`),
		"unterminated string": []byte(`["`),
		"10,001 items":        bytes.Repeat([]byte("{}\n"), collector.MaxIngestItems+1),
	} {
		if code, _, raw := ingestPost(t, app, bytes.NewReader(body), "application/json"); code != http.StatusBadRequest || !strings.Contains(raw, `"error"`) {
			t.Errorf("%s body: %d %.200s, want 400 with an error", name, code, raw)
		}
	}

	// Bodies that hold no pair at all: either the whole body is refused with
	// 400, or every item is rejected on its own; nothing is accepted.
	garbage := make([]byte, 64<<10)
	_, _ = rand.Read(garbage)
	deepItem := `{"version":1,"id":"deep","control":{"value":` + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + `}}`
	for name, body := range map[string][]byte{
		"random bytes":                       garbage,
		"JSON array with a 10,000-deep item": []byte(`[` + deepItem + `,{"version":2}]`),
		"top-level object":                   []byte(`{"pairs":[]}`),
	} {
		code, r, raw := ingestPost(t, app, bytes.NewReader(body), "application/json")
		t.Logf("%s body: %d %.200s", name, code, raw)
		if code != http.StatusBadRequest && (code != http.StatusOK || r.Accepted != 0 || r.Rejected == 0) {
			t.Errorf("%s body: %d %.200s, want 400 or 200 with every item rejected", name, code, raw)
		}
	}
	// A body that is not JSON at all is refused whole, as docs/api.md says;
	// so is one whose only JSON lines are no objects (random bytes hold a
	// lone digit on a line now and then).
	for _, body := range [][]byte{garbage, []byte("hello world"), []byte("hello\nworld"), []byte("6\n\xb1garbage\n[]\n\"x\"")} {
		if code, _, raw := ingestPost(t, app, bytes.NewReader(body), "application/x-ndjson"); code != http.StatusBadRequest {
			t.Errorf("a body that is not JSON (%.20q): %d %.200s, want 400", body, code, raw)
		}
	}
	return 2*len(big) + len(atLimit)
}

// checkDeadLetters matches every stored dead letter to a bad envelope and
// checks that its reason names the envelope's problem. The API lists at most
// 1,000, so it reads them from the store.
func checkDeadLetters(t *testing.T, app *collector.App, expected map[[32]byte][]expectation, total int) {
	t.Helper()
	stored, err := app.Store().DeadLetters(context.Background(), 2*total)
	if err != nil {
		t.Fatal(err)
	}
	var wrong mismatches
	for _, d := range stored {
		key := deadLetterKey(d.Subject, d.Data)
		es := expected[key]
		if len(es) == 0 {
			wrong.add("unexpected dead letter", fmt.Sprintf("on %s: %q (%.80q)", d.Subject, d.Reason, d.Data))
			continue
		}
		e := es[len(es)-1]
		expected[key] = es[:len(es)-1]
		if d.Source != "nats" || !strings.Contains(strings.ToLower(d.Reason), strings.ToLower(e.want)) {
			wrong.add("wrong reason: "+e.kind, fmt.Sprintf("reason %q from %q, want it to contain %q", d.Reason, d.Source, e.want))
		}
	}
	for _, es := range expected {
		for _, e := range es {
			wrong.add("not dead-lettered: "+e.kind, "")
		}
	}
	if msg := wrong.String(); msg != "" {
		t.Errorf("dead letters that do not match the bad envelopes:\n%s", msg)
	}
}

// mismatches counts wrong outcomes by kind, keeping the first example of
// each, so that a failure reads as a short list rather than thousands of lines.
type mismatches struct {
	n       map[string]int
	example map[string]string
}

func (m *mismatches) add(kind, example string) {
	if m.n == nil {
		m.n, m.example = map[string]int{}, map[string]string{}
	}
	if m.n[kind]++; m.n[kind] == 1 {
		m.example[kind] = example
	}
}

func (m *mismatches) String() string {
	var lines []string
	for k, n := range m.n {
		line := fmt.Sprintf("%5d × %s", n, k)
		if m.example[k] != "" {
			line += "; first: " + m.example[k]
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func workerStats(app *collector.App) string {
	var out []string
	for _, w := range app.Workers() {
		out = append(out, fmt.Sprintf("%+v", w.Stats()))
	}
	return strings.Join(out, ", ")
}

// TestBadInputFlood sends about 3,000 bad envelopes of some 70 kinds to the
// verifiers over NATS and to HTTP ingest at the same time, with good ones in
// between, and checks that no one gets in and nothing is lost: every bad NATS
// envelope is dead-lettered with a reason naming its problem, every bad HTTP
// item is rejected with one, bodies over the limit get 413 and bodies that are
// no list of pairs 400, every good pair is counted exactly, no bad envelope
// creates an experiment, the collector stays ready throughout, the verifiers
// never fail a flush, and the heap does not keep what went through. "Missing
// fields" include the observations and their durations, which
// docs/wire-format.md marks as required.
func TestBadInputFlood(t *testing.T) {
	const natsBad, httpBad = 1900, 1100
	start := time.Now()
	app, nc := startSystem(t, floodToken)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kinds := badKinds(int(nc.MaxPayload()))
	truth := &floodTruth{now: time.Now().UTC(), want: map[string]counts{}}
	counted := func() string {
		want, _ := truth.counts()
		return sameCounts(apiCounts(t, app, floodExperiment), want)
	}

	// Warm up, so that pools, caches and prepared statements exist before
	// the heap is measured.
	for range 8 {
		if _, err := js.PublishMsg(context.Background(), goodMsg(truth.good())); err != nil {
			t.Fatal(err)
		}
	}
	if code, r, raw := ingestPost(t, app, bytes.NewReader(slices.Concat(truth.good(), []byte("\n"), truth.good())), "application/x-ndjson"); code != http.StatusOK || r.Accepted != 2 {
		t.Fatalf("warm-up ingest: %d %s", code, raw)
	}
	testutil.Eventually(t, 20*time.Second, counted)
	heapBefore := heapInuse()

	// The collector must answer /readyz and /healthz with 200 throughout.
	stopProbes := make(chan struct{})
	var probing sync.WaitGroup
	var failedProbes []string
	probes := 0
	probing.Go(func() {
		client := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, path := range []string{"/readyz", "/healthz"} {
				probes++
				resp, err := client.Get(app.URL() + path)
				if err != nil {
					failedProbes = append(failedProbes, path+": "+err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failedProbes = append(failedProbes, fmt.Sprintf("%s: %d", path, resp.StatusCode))
				}
			}
			select {
			case <-stopProbes:
				return
			case <-tick.C:
			}
		}
	})

	var expected map[[32]byte][]expectation
	var natsBytes, httpBytes int
	var flood sync.WaitGroup
	flood.Go(func() { expected, natsBytes = natsFlood(t, js, kinds, truth, natsBad) })
	flood.Go(func() { httpBytes = httpFlood(t, app, kinds, truth, httpBad) + httpBodies(t, app, truth) })
	flood.Wait()

	// Wait until the verifiers have settled every message: nothing pending,
	// nothing awaiting an ack (a worker acks only after its commit).
	testutil.Eventually(t, 30*time.Second, func() string {
		return settled(js, func() string { return "; workers: " + workerStats(app) })
	})
	var dl struct {
		Total       int64 `json:"total"`
		DeadLetters []struct {
			Source string `json:"source"`
			Reason string `json:"reason"`
		} `json:"dead_letters"`
	}
	if code := getJSON(t, app.URL()+"/api/v1/dead-letters?limit=1000", &dl); code != http.StatusOK {
		t.Errorf("GET /api/v1/dead-letters: %d", code)
	}
	close(stopProbes)
	probing.Wait()
	elapsed := time.Since(start)

	if dl.Total != natsBad || len(dl.DeadLetters) != 1000 {
		t.Errorf("GET /api/v1/dead-letters: total %d, %d listed; want %d, 1000", dl.Total, len(dl.DeadLetters), natsBad)
	}
	if msg := counted(); msg != "" {
		t.Errorf("good pairs: %s", msg)
	}
	checkDeadLetters(t, app, expected, natsBad)

	// No bad envelope created an experiment.
	var exps struct {
		Experiments []struct {
			Name string `json:"name"`
		} `json:"experiments"`
	}
	getJSON(t, app.URL()+"/api/v1/experiments", &exps)
	var names []string
	for _, e := range exps.Experiments {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{floodExperiment}) {
		t.Errorf("experiments %q, want only %q: envelopes that should have been refused were counted", names, floodExperiment)
	}

	// The verifiers judged every good pair, dead-lettered every bad one and
	// never failed a flush; no part of the collector stopped.
	_, goodPairs := truth.counts()
	var judged, deadLettered, flushErrors uint64
	for _, w := range app.Workers() {
		s := w.Stats()
		judged, deadLettered, flushErrors = judged+s.Judged, deadLettered+s.DeadLettered, flushErrors+s.FlushErrors
	}
	if judged != uint64(goodPairs) || deadLettered != natsBad || flushErrors != 0 {
		t.Errorf("workers judged %d pairs (want %d), dead-lettered %d (want %d), failed %d flushes (want 0)",
			judged, goodPairs, deadLettered, natsBad, flushErrors)
	}
	select {
	case err := <-app.Err():
		t.Errorf("a part of the collector stopped: %v", err)
	default:
	}
	if len(failedProbes) > 0 {
		t.Errorf("%d of %d health probes failed during the flood; first: %s", len(failedProbes), probes, failedProbes[0])
	}

	// The heap keeps no more than a working set. The flood pushes well over
	// 100 MiB through this process (48 max_payload envelopes over NATS,
	// three 10 MiB bodies over HTTP, thousands of small envelopes). 64 MiB
	// is generous for what may legitimately stay (JetStream's block cache,
	// connection buffers, pools), yet a verifier, ingest or dead-letter path
	// that kept even half of what passed through would exceed it.
	const heapBound = 64 << 20
	heapAfter := heapInuse()
	t.Logf("%d bad NATS envelopes and %d good pairs (%.1f MiB), %d bad HTTP items and whole bodies (%.1f MiB); %d good pairs in all; %d health probes; %.1fs; heap in use %.1f → %.1f MiB",
		natsBad, natsBad/3, float64(natsBytes)/(1<<20), httpBad, float64(httpBytes)/(1<<20), goodPairs, probes,
		elapsed.Seconds(), float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20))
	if growth := int64(heapAfter) - int64(heapBefore); growth > heapBound {
		t.Errorf("heap in use grew by %.1f MiB over the flood (%.1f → %.1f MiB), want under %d MiB",
			float64(growth)/(1<<20), float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), heapBound>>20)
	}
}

// edgeCase is a pair the wire format allows, at or past what producers
// usually send.
type edgeCase struct {
	name string
	edit func(p *envelope.Pair)
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

var edgeCases = []edgeCase{
	{"exactly envelope.MaxSize bytes", func(p *envelope.Pair) {
		// Grow the candidate's value until the envelope is exactly MaxSize.
		p.Candidate.Value = json.RawMessage(`{"pad":""}`)
		b, _ := envelope.Marshal(p)
		p.Candidate.Value = json.RawMessage(`{"pad":"` + strings.Repeat("x", envelope.MaxSize-len(b)) + `"}`)
	}},
	{"64-character operation", func(p *envelope.Pair) { p.Operation = strings.Repeat("O", envelope.MaxNameLen) }},
	{"128-character id of every allowed kind", func(p *envelope.Pair) {
		p.ID = (p.ID + ".:_-" + strings.Repeat("Zz9", 50))[:envelope.MaxIDLen]
	}},
	{"16 attributes of 128 bytes", func(p *envelope.Pair) {
		for i := range envelope.MaxAttrs - 2 {
			p.User.Attrs[fmt.Sprintf("attr%d", i)] = strings.Repeat("v", envelope.MaxAttrValueLen)
		}
		p.User.Attrs["plan"] = strings.Repeat("p", envelope.MaxAttrValueLen)
	}},
	{"unicode attributes and values", func(p *envelope.Pair) {
		p.User.Attrs["plan"] = "pró-✓-🇮🇳-עברית"
		p.Candidate.Value = json.RawMessage(`{"name":"Zoë 🚀 e\u0301 ﷽"}`)
	}},
	{"256-byte user key", func(p *envelope.Pair) { p.User.Key = strings.Repeat("k", envelope.MaxUserKeyLen) }},
	{"4096-byte error", func(p *envelope.Pair) {
		p.Candidate = envelope.Observation{Error: strings.Repeat("e", envelope.MaxErrorLen), Status: envelope.StatusError, DurationNS: 5}
	}},
	{"timeout, panic and skipped sides", func(p *envelope.Pair) {
		p.Kind = envelope.KindWrite
		p.Control = envelope.Observation{Status: envelope.StatusPanic, Error: "boom", DurationNS: 1}
		p.Candidate = envelope.Observation{Status: envelope.StatusSkipped}
	}},
	{"candidate timeout", func(p *envelope.Pair) {
		p.Candidate = envelope.Observation{Status: envelope.StatusTimeout, DurationNS: 1}
	}},
	{"longest duration", func(p *envelope.Pair) { p.Control.DurationNS = math.MaxInt64 }},
	// Times far from now are refused, not edge cases: see
	// TestBadInputTimesOutsideTheWindow.
	{"NUL and lone surrogate escapes in a divergent value", func(p *envelope.Pair) {
		p.Candidate.Value = json.RawMessage(`{"a":"\u0000","b":"\ud800","c":"\udfff\ud800"}`)
	}},
	{"9,000-level nesting in a divergent value", func(p *envelope.Pair) {
		p.Candidate.Value = json.RawMessage(strings.Repeat("[", 9000) + strings.Repeat("]", 9000))
	}},
	{"100 KB object key in a divergent value", func(p *envelope.Pair) {
		p.Candidate.Value = json.RawMessage(`{"` + randomHex(100_000) + `":1}`)
	}},
	{"huge exponent in a divergent value", func(p *envelope.Pair) {
		p.Candidate.Value = json.RawMessage(`{"total":1e1000000}`)
	}},
	{"huge exponents on both sides", func(p *envelope.Pair) {
		p.Control.Value = json.RawMessage(`[1e1000000,-1e-1000000]`)
		p.Candidate.Value = p.Control.Value
	}},
	{"numbers written differently", func(p *envelope.Pair) {
		p.Control.Value = json.RawMessage(`[100,0.1,0,123456789012345678901234567890]`)
		p.Candidate.Value = json.RawMessage(`[1e2,0.10,-0,123456789012345678901234567891]`)
	}},
	{"flag key, variant and reason of 128 random bytes", func(p *envelope.Pair) {
		// Random, so that PostgreSQL cannot compress them below its index
		// row limit.
		n := envelope.MaxAttrValueLen
		p.Flag = &envelope.Flag{Key: randomHex(n), Variant: randomHex(n), Reason: randomHex(n)}
	}},
	{"client verdict against the values", func(p *envelope.Pair) { p.ClientVerdict = "mismatch" }},
}

// TestBadInputValidEdgeCases sends, one case per fresh system, a pair the
// wire format allows but producers seldom send — at the size and length
// limits, odd numbers, odd times, long flag fields — over NATS and over HTTP,
// between ordinary pairs. Each must be counted like any other pair: the wire
// format allows it, so refusing it would lose a pair. Above all it must never
// stop a verifier from counting the pairs around it.
func TestBadInputValidEdgeCases(t *testing.T) {
	for _, c := range edgeCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			const experiment = "e2e-edge"
			app, nc := startSystem(t, floodToken)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			want := map[string]counts{}
			var lines [][]byte
			for i := range 14 {
				p, _ := makePair(experiment, i, now)
				if i == 3 || i == 10 {
					c.edit(p)
				}
				b, err := envelope.Marshal(p)
				if err != nil {
					t.Fatalf("pair %d: %v", i, err)
				}
				segment, _ := segmentdef.Key(p.User.Attrs, []string{"country", "plan"})
				want[segment] = counts{pairs: want[segment].pairs + 1}
				if i < 7 {
					if _, err := js.PublishMsg(context.Background(), goodMsg(b)); err != nil {
						t.Fatalf("publish pair %d (%d bytes): %v", i, len(b), err)
					}
				} else {
					lines = append(lines, b)
				}
			}
			code, r, raw := ingestPost(t, app, bytes.NewReader(bytes.Join(lines, []byte("\n"))), "application/x-ndjson")
			if code != http.StatusOK || r.Accepted != len(lines) {
				t.Fatalf("ingest: %d %.500s", code, raw)
			}
			var dl struct {
				Total       int `json:"total"`
				DeadLetters []struct {
					Reason string `json:"reason"`
				} `json:"dead_letters"`
			}
			// Every pair counted (waiting for the counts themselves, not
			// inferring them from the consumer), then nothing left in flight.
			testutil.Eventually(t, 10*time.Second, func() string {
				getJSON(t, app.URL()+"/api/v1/dead-letters", &dl)
				got := apiCounts(t, app, experiment)
				for k, c := range got {
					got[k] = counts{pairs: c.pairs}
				}
				if msg := sameCounts(got, want); msg != "" {
					return fmt.Sprintf("%s; %d dead letters %v; workers: %s", msg, dl.Total, dl.DeadLetters, workerStats(app))
				}
				return ""
			})
			testutil.Eventually(t, 10*time.Second, func() string {
				return settled(js, func() string { return "; workers: " + workerStats(app) })
			})
			for _, w := range app.Workers() {
				if s := w.Stats(); s.FlushErrors != 0 {
					t.Errorf("a worker failed %d flushes", s.FlushErrors)
				}
			}
		})
	}
}

// TestBadInputTimesOutsideTheWindow: a pair dated far ahead of the clock or
// long before it, or at the zero time, is refused with the true reason —
// dead-lettered over NATS, rejected over HTTP — and the pairs around it are
// counted (#18).
func TestBadInputTimesOutsideTheWindow(t *testing.T) {
	const experiment = "e2e-times"
	app, nc := startSystem(t, floodToken)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	bad := []struct {
		name string
		at   time.Time
		want string
	}{
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "field time: 9999-12-31T23:59:59Z is more than 5m0s ahead of the verifier's clock"},
		{"year 1", time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), "field time: 0001-01-01T00:00:01Z is more than 25h0m0s before the verifier's clock"},
		{"the zero time", time.Time{}, "field time: 0001-01-01T00:00:00Z is not when the call happened"},
		{"a day ahead", now.Add(24 * time.Hour), "ahead of the verifier's clock (--max-clock-skew)"},
	}
	encode := func(i int, at time.Time) []byte {
		p, _ := makePair(experiment, i, now)
		b, err := envelope.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		// Marshal refuses a zero time; write the time into the bytes.
		old, _ := json.Marshal(p.Time)
		want, _ := json.Marshal(at)
		return bytes.Replace(b, old, want, 1)
	}
	var lines [][]byte
	for i, c := range bad {
		if _, err := js.PublishMsg(context.Background(), goodMsg(encode(i, c.at))); err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(context.Background(), goodMsg(encode(100+i, now))); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, encode(200+i, c.at), encode(300+i, now))
	}
	code, r, raw := ingestPost(t, app, bytes.NewReader(bytes.Join(lines, []byte("\n"))), "application/x-ndjson")
	if code != http.StatusOK || r.Accepted != len(bad) || r.Rejected != len(bad) {
		t.Fatalf("ingest: %d %.800s", code, raw)
	}
	for i, c := range bad {
		if it := r.Items[2*i]; it.Status != "rejected" || !strings.Contains(it.Error, c.want) {
			t.Errorf("%s over HTTP: %+v, want rejected with %q", c.name, it, c.want)
		}
	}
	var dl struct {
		Total       int `json:"total"`
		DeadLetters []struct {
			Reason string `json:"reason"`
		} `json:"dead_letters"`
	}
	testutil.Eventually(t, 20*time.Second, func() string {
		getJSON(t, app.URL()+"/api/v1/dead-letters", &dl)
		var total int64
		for _, c := range apiCounts(t, app, experiment) {
			total += c.pairs
		}
		// The list and the total are read apart: wait for both.
		if dl.Total != len(bad) || len(dl.DeadLetters) != len(bad) || total != int64(2*len(bad)) {
			return fmt.Sprintf("%d dead letters and %d pairs counted, want %d and %d", dl.Total, total, len(bad), 2*len(bad))
		}
		return ""
	})
	for _, c := range bad {
		found := false
		for _, d := range dl.DeadLetters {
			found = found || strings.Contains(d.Reason, c.want)
		}
		if !found {
			t.Errorf("%s over NATS: no dead letter says %q: %+v", c.name, c.want, dl.DeadLetters)
		}
	}
}
