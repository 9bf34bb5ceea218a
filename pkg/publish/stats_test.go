package publish_test

import (
	"reflect"
	"testing"

	"github.com/parityhq/parity/pkg/publish"
)

// TestStatsAdd checks that Add sums every counter: a counter added to Stats
// but not to Add fails here.
func TestStatsAdd(t *testing.T) {
	var a, b, want publish.Stats
	va, vb, vw := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem(), reflect.ValueOf(&want).Elem()
	for i := range va.NumField() {
		va.Field(i).SetUint(uint64(i + 1))
		vb.Field(i).SetUint(uint64(10 * (i + 1)))
		vw.Field(i).SetUint(uint64(11 * (i + 1)))
	}
	a.Add(b)
	if a != want {
		t.Errorf("Add: %+v, want %+v", a, want)
	}
}
