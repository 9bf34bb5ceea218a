package diff

import (
	"encoding/json"
	"reflect"
	"sync"
	"testing"
)

// One Differ judged from many goroutines gives the same results as judged
// from one (run with -race).
func TestConcurrent(t *testing.T) {
	d, err := Compile(Rules{Default: OperationRules{
		Arrays:  []ArrayRule{{Path: "items", Key: "id"}},
		Numbers: []NumberRule{{Path: "**", Absolute: 0.5}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	control, _ := json.Marshal(benchDoc(4096))
	var inputs [][]byte
	for n := 0; n <= 10; n++ {
		doc := benchDoc(4096)
		mutate(doc, n)
		b, _ := json.Marshal(doc)
		inputs = append(inputs, b)
	}
	want := make([]Result, len(inputs))
	wantEx := make([]Result, len(inputs))
	for i, in := range inputs {
		want[i] = d.Values(control, in)
		wantEx[i] = d.ExplainValues("", control, in)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for k := 0; k < 50; k++ {
				i := (g + k) % len(inputs)
				if got := d.Values(control, inputs[i]); !reflect.DeepEqual(got, want[i]) {
					t.Errorf("input %d: concurrent result differs:\n%+v\n%+v", i, got, want[i])
					return
				}
				if got := d.ExplainValues("", control, inputs[i]); !reflect.DeepEqual(got, wantEx[i]) {
					t.Errorf("input %d: concurrent explanation differs:\n%+v\n%+v", i, got, wantEx[i])
					return
				}
			}
		})
	}
	wg.Wait()
}
