package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/parityhq/parity/pkg/reconcile"
)

// mapSource is a Source over an in-memory map, standing for a store the
// application reaches itself (a DynamoDB table, a service's API). Keys are
// ordered as strings; both sides of a run must order them alike.
type mapSource struct {
	side string
	rows map[string]string // key -> JSON object
}

func (m *mapSource) Describe(context.Context) (reconcile.Description, error) {
	return reconcile.Description{Side: m.side, Name: "orders", Key: "id", KeyKind: "string",
		Columns: []reconcile.Column{{Name: "id"}, {Name: "total"}, {Name: "country"}}}, nil
}

func (m *mapSource) Rows(_ context.Context, req reconcile.Request) ([]reconcile.Row, error) {
	var keys []string
	if req.Keys != nil {
		keys = req.Keys
	} else {
		for k := range m.rows {
			if (req.After == nil || k > *req.After) && (req.Through == nil || k <= *req.Through) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		if req.Limit > 0 && len(keys) > req.Limit {
			keys = keys[:req.Limit]
		}
	}
	var out []reconcile.Row
	for _, k := range keys {
		doc, ok := m.rows[k]
		if !ok {
			continue
		}
		var seg []string
		for _, c := range req.Segments {
			// A real source reads its own attribute; here "country" is
			// the first two letters of the key.
			if c == "country" {
				seg = append(seg, strings.ToUpper(k[:2]))
			}
		}
		out = append(out, reconcile.Row{Key: k, Doc: []byte(doc), Segment: seg})
	}
	return out, nil
}

// Reconcile a store the application reaches itself against another:
// implement [reconcile.Source] (and, where the store can summarise ranges,
// [reconcile.Checksummer]) and call [reconcile.Run].
func Example() {
	old := &mapSource{side: "old", rows: map[string]string{
		"in-1": `{"id":"in-1","total":10.50,"country":"IN"}`,
		"in-2": `{"id":"in-2","total":3,"country":"IN"}`,
		"us-1": `{"id":"us-1","total":7,"country":"US"}`,
	}}
	new := &mapSource{side: "new", rows: map[string]string{
		"in-1": `{"id":"in-1","total":10.5,"country":"IN"}`, // the same number
		"in-2": `{"id":"in-2","total":4,"country":"IN"}`,    // a bad copy
		"us-2": `{"id":"us-2","total":1,"country":"US"}`,    // not in old
	}}
	res, err := reconcile.Run(context.Background(), old, new, reconcile.Options{
		Segments: []string{"country"}, RecheckDelay: -1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", res.Counts)
	for _, s := range res.Samples {
		fmt.Println(s.Segment, s.Key, s.Kind)
	}
	// Output:
	// {Compared:4 Matched:1 Divergent:1 MissingInNew:1 ExtraInNew:1 Invalid:0}
	// country=IN in-2 divergent
	// country=US us-1 missing_in_new
	// country=US us-2 extra_in_new
}
