package envelope

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// codecSeeds are envelopes at the edges of the single-pass decoder: each
// either takes its fast path or must be handed to the general decoder.
func codecSeeds() []string {
	good, _ := Marshal(validPair())
	g := string(good)
	return []string{
		g,
		" \n" + g + "\t ",
		strings.Replace(g, `"version":1`, `"Version":1`, 1),                   // another case
		strings.Replace(g, `"version":1`, `"version":1,"version":1`, 1),       // repeated
		strings.Replace(g, `"kind":"read"`, `"kind":"\u0072ead"`, 1),          // escaped value
		strings.Replace(g, `"kind":"read"`, `"\u006bind":"read"`, 1),          // escaped key
		strings.Replace(g, `"kind":"read"`, `"\u212aind":"read"`, 1),          // Kelvin sign folds to k
		strings.Replace(g, `"kind":"read"`, `"kind":null`, 1),                 // null
		strings.Replace(g, `"id":"p-1"`, `"id":"p-\ud83d\ude00"`, 1),          // surrogate pair
		strings.Replace(g, `"id":"p-1"`, `"id":"p-\ud83d"`, 1),                // lone surrogate
		strings.Replace(g, `"duration_ns":2100000`, `"duration_ns":2.1e6`, 1), // not an integer
		strings.Replace(g, `"duration_ns":2100000`, `"duration_ns":99999999999999999999`, 1),
		strings.Replace(g, `"duration_ns":2100000`, `"duration_ns":-0`, 1),
		strings.Replace(g, `"version":1`, `"version":10`, 1),
		strings.Replace(g, `"version":1`, `"version":1.0`, 1),
		strings.Replace(g, `"version":1`, `"version":"1"`, 1),
		strings.Replace(g, `"time":"2026-11-21T10:15:30Z"`, `"time":"0001-01-01T00:00:00Z"`, 1),
		strings.Replace(g, `"time":"2026-11-21T10:15:30Z"`, `"time":null`, 1),
		strings.Replace(g, `"time":"2026-11-21T10:15:30Z"`, `"time":"2026-11-21T10:15:30+25:00"`, 1),
		strings.Replace(g, `"attrs":{`, `"attrs":{"a":"1","a":"2",`, 1),
		strings.Replace(g, `"attrs":{`, `"attrs":null,"x":{`, 1),
		strings.Replace(g, `"user":{`, `"user":{"attrs":{"z":"1"},`, 1),
		strings.Replace(g, `"control":{`, `"control":{"value":null,`, 1),
		strings.Replace(g, `"control":{`, `"unknown":[1,{"a":[]}],"control":{"extra":true,`, 1),
		strings.Replace(g, `{"total":2549}`, `{ "total" : 2549 , "s":"<&>\u2028" }`, 1),
		strings.Replace(g, `"stage":"shadow"`, `"stage":"shadow","flag":{"key":"k","reason":"R","x":1}`, 1),
		strings.Replace(g, `"stage":"shadow"`, `"stage":"shadow","flag":null`, 1),
		strings.Replace(g, `,"candidate":{"value":{"total":2548},"duration_ns":1300000}`, ``, 1),
		strings.Replace(g, `"duration_ns":1300000`, `"error":"e"`, 1),
		g[:len(g)-1],
		g + "x",
		`{"version":1,"control":{"value":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`,
		"{\"version\":1,\"id\":\"\xff\"}",
	}
}

// The seeds are checked against the previous decoder on every test run, not
// only when fuzzing.
func TestDecodeMatchesOracle(t *testing.T) {
	for _, s := range codecSeeds() {
		got, err := Decode([]byte(s))
		want, werr := oracleDecode([]byte(s))
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() && !strings.Contains(err.Error(), ErrZeroTime.Error()) {
			t.Errorf("%.80s…: Decode error %v, previous decoder %v", s, err, werr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%.80s…: Decode = %+v, previous decoder %+v", s, got, want)
		}
	}
}

// Envelopes as hooks write them take the single pass, not the general
// decoder: that is where the speed is.
func TestDecodeFastPath(t *testing.T) {
	p := validPair()
	p.Flag = &Flag{Key: "orders-db", Variant: "shadow", Reason: "TARGETING_MATCH"}
	p.Control.Error, p.Control.Status = `duplicate key "x"\n`, StatusError
	p.ClientVerdict, p.Mode = "match", ModeAA
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Pair
	if !fastDecode(b, &q) {
		t.Fatalf("the single-pass decoder handed a hook's envelope to the general decoder: %s", b)
	}
	if err := q.validate(false); err != nil {
		t.Fatal(err)
	}
	q.Version = p.Version
	if !reflect.DeepEqual(&q, p) {
		t.Errorf("decoded %+v, want %+v", &q, p)
	}
	// Values are slices of the message, not copies.
	if &q.Control.Value[0] != &b[strings.Index(string(b), `{"total":2549}`)] {
		t.Error("the control value was copied out of the message")
	}
}

// The zero time is refused for what it is, not as a missing time (#18).
func TestZeroTimeNotMissing(t *testing.T) {
	good, _ := Marshal(validPair())
	zero := strings.Replace(string(good), `"time":"2026-11-21T10:15:30Z"`, `"time":"0001-01-01T00:00:00Z"`, 1)
	_, err := Decode([]byte(zero))
	var fe *FieldError
	if !errorsAs(err, &fe) || fe.Field != "time" || !strings.Contains(fe.Problem, "not when the call happened") {
		t.Errorf("Decode(zero time) = %v, want a time error saying what is wrong", err)
	}
	missing := strings.Replace(string(good), `"time":"2026-11-21T10:15:30Z",`, ``, 1)
	if _, err := Decode([]byte(missing)); err == nil || !strings.Contains(err.Error(), "field time: missing") {
		t.Errorf("Decode(no time) = %v, want time missing", err)
	}
}

// AppendPair writes what encoding/json writes, including escapes.
func TestAppendPairMatchesJSON(t *testing.T) {
	p := validPair()
	p.User.Key = "<a&b>\u2028\x01\"\\é"
	p.Control.Value = json.RawMessage(` { "a" : [ 1 , "<\u00e9>" , "\u2028" ] } `)
	p.Candidate.Error, p.Candidate.Status = "bad\tthing", StatusError
	p.Flag = &Flag{Variant: "v"}
	p.Time = time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	got, err := AppendPair([]byte("prefix"), p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(p)
	if string(got) != "prefix"+string(want) {
		t.Errorf("AppendPair =\n%s\nencoding/json:\n%s", got, want)
	}
}

func TestAppendPairAllocatesNothing(t *testing.T) {
	p := validPair()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf, _ = AppendPair(buf[:0], p) }); n != 0 {
		t.Errorf("AppendPair allocates %v times per pair, want 0", n)
	}
}

// benchEnvelope is an envelope of about size bytes, as a hook writes it.
func benchEnvelope(size int) []byte {
	p := validPair()
	v := json.RawMessage(`{"id":1,"status":"paid","note":"` + strings.Repeat("x", max(size/2-120, 0)) + `"}`)
	p.Control.Value, p.Candidate.Value = v, v
	b, _ := Marshal(p)
	return b
}

// BenchmarkDecode compares the single-pass decoder (parity) with the
// previous encoding/json decoder (reference).
func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{1536, 8192} {
		data := benchEnvelope(size)
		name := map[int]string{1536: "1.5KB", 8192: "8KB"}[size]
		b.Run(name+"/reference", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := oracleDecode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parity", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode compares AppendPair into a reused buffer (parity) with
// encoding/json (reference).
func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{1536, 8192} {
		p, err := Decode(benchEnvelope(size))
		if err != nil {
			b.Fatal(err)
		}
		name := map[int]string{1536: "1.5KB", 8192: "8KB"}[size]
		b.Run(name+"/reference", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parity", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 16<<10)
			for b.Loop() {
				buf, err = AppendPair(buf[:0], p)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func errorsAs(err error, target **FieldError) bool { return errors.As(err, target) }

// plainWord agrees with a byte-by-byte check for every byte value in every
// position of a word of otherwise plain bytes.
func TestPlainWord(t *testing.T) {
	for pos := range 8 {
		for v := range 256 {
			w := []byte("abcdefgh")
			w[pos] = byte(v)
			want := true
			for _, c := range w {
				want = want && c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
			}
			if got := plainWord(binary.LittleEndian.Uint64(w)); got != want {
				t.Errorf("plainWord(%q) = %v, want %v", w, got, want)
			}
		}
	}
}

// A batch's pairs decode exactly as each would alone, whether the batch's
// own pass reads them or leaves them to Decode.
func FuzzDecodeMessage(f *testing.F) {
	seeds := codecSeeds()
	f.Add([]byte(`{"version":2,"id":"b","pairs":[` + seeds[0] + `,` + seeds[2] + `,` + seeds[7] + `]}`))
	f.Add([]byte(`{"version":2,"pairs":[` + seeds[0] + `],"id":"b","x":1}`))
	f.Add([]byte(`{"version":2,"id":"b","pairs":[]}`))
	f.Add([]byte(seeds[0]))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(m.Items) == 0 || len(m.Items) > MaxBatchPairs {
			t.Fatalf("%d items", len(m.Items))
		}
		for i, it := range m.Items {
			p, err := Decode(it.Raw)
			if (err == nil) != (it.Err == nil) || err != nil && err.Error() != it.Err.Error() {
				t.Fatalf("item %d: error %v, alone %v", i, it.Err, err)
			}
			if err == nil && !reflect.DeepEqual(p, it.Pair) {
				t.Fatalf("item %d: %+v, alone %+v", i, it.Pair, p)
			}
		}
	})
}
