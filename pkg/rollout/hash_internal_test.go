package rollout

import "testing"

// TestBucketVectors pins the percentage hash. The vectors were computed by an
// independent implementation (Python) of the algorithm documented on Bucket;
// an implementation in another language must reproduce every row.
func TestBucketVectors(t *testing.T) {
	for _, tc := range []struct {
		experiment, key string
		fmix            uint64 // fmix64(FNV-1a 64(experiment + ":" + key))
		bucket          uint64 // fmix % 10000
	}{
		{"orders", "123", 0x96c1197c32b719de, 6622},
		{"orders", "456", 0xfb0765758fc48bfd, 8317},
		{"orders", "user-1", 0x4bc6363a2f23d192, 4722},
		{"orders", "user-2", 0xe2678fe788903722, 1122},
		{"orders", "", 0xc71ee85d37680280, 4768},
		{"checkout", "123", 0x85d63755ecbb7c0c, 3676},
		{"", "", 0x6fb5654d28b3ff2d, 1709},
		{"orders", "ünïcode", 0x9582fc7540d26499, 1065},
	} {
		if got := Bucket(tc.experiment, tc.key); got != tc.bucket {
			t.Errorf("Bucket(%q, %q) = %d, want %d", tc.experiment, tc.key, got, tc.bucket)
		}
		if got := fmix64(fnv1a(tc.experiment + ":" + tc.key)); got != tc.fmix {
			t.Errorf("fmix64(fnv1a(%q)) = %#x, want %#x", tc.experiment+":"+tc.key, got, tc.fmix)
		}
	}
}

// fnv1a is the textbook FNV-1a 64, an oracle for the inlined loop in Bucket.
func fnv1a(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for _, c := range []byte(s) {
		h ^= uint64(c)
		h *= 0x100000001b3
	}
	return h
}

func TestThreshold(t *testing.T) {
	for _, tc := range []struct {
		percent float64
		want    uint64
	}{
		{0, 0}, {-1, 0}, {0.01, 1}, {0.1, 10}, {5, 500}, {25, 2500}, {33.33, 3333}, {99.99, 9999}, {100, 10000}, {140, 10000},
	} {
		if got := threshold(tc.percent); got != tc.want {
			t.Errorf("threshold(%v) = %d, want %d", tc.percent, got, tc.want)
		}
	}
}
