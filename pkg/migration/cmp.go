package migration

import "github.com/google/go-cmp/cmp"

// CmpEqual returns a [Config.Compare] function that compares two results
// with cmp.Equal and opts, for example
//
//	Compare: migration.CmpEqual[Order](cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Order{}, "UpdatedAt")),
//
// go-cmp is thorough but costly (hundreds of microseconds for a few
// kilobytes); the comparison runs off the caller's path, once per published
// pair. cmp.Equal panics on unexported fields it is not told how to handle;
// such a panic is recovered, counted in [Stats.Panics], and leaves the
// pair without a client verdict.
func CmpEqual[Res any](opts ...cmp.Option) func(control, candidate Res) bool {
	o := cmp.Options(opts)
	return func(control, candidate Res) bool { return cmp.Equal(control, candidate, o) }
}
