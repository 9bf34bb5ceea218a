package report

import "testing"

func BenchmarkBounds(b *testing.B) {
	e := newMixture(0.01).evidence(250, 40000-250)
	for b.Loop() {
		e.bounds(3)
	}
}

func BenchmarkEvaluateOne(b *testing.B) {
	st := SegmentStats{Pairs: 40000, Divergent: 390}
	for b.Loop() {
		Evaluate(GateSpec{MaxRate: 0.01}, nil, st)
	}
}
