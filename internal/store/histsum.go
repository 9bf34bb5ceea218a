package store

import (
	"encoding/binary"
	"fmt"

	"github.com/parityhq/parity/pkg/report"
)

// histogramSum adds histograms given in the encoding of
// [report.Histogram.Encode] without decoding each into a [report.Histogram]
// first: adding into one dense set of buckets is what [report.Histogram.Merge]
// does, and it allocates nothing per histogram. It accepts and refuses
// exactly the encodings [report.DecodeHistogram] does.
type histogramSum struct {
	counts [report.HistogramBuckets]int64
}

// addEncoding adds the histogram enc encodes.
func (h *histogramSum) addEncoding(enc []int64) error { return h.addEncodingSigned(enc, 1) }

// addEncodingSigned adds sign times the histogram enc encodes (sign -1
// subtracts it).
func (h *histogramSum) addEncodingSigned(enc []int64, sign int64) error {
	if len(enc) == 0 {
		return nil
	}
	if err := checkEncoding(enc[0], len(enc)-1); err != nil {
		return err
	}
	for i, c := range enc[1:] {
		if c < 0 {
			return negativeCount(c, int(enc[0])+i)
		}
		h.counts[int(enc[0])+i] += sign * c
	}
	return nil
}

// pgInt8OID is the type OID of int8, the element type of bigint[].
const pgInt8OID = 20

// addBinary adds the histogram whose encoding raw holds as a bigint[] in
// PostgreSQL's binary array format: dimensions, has-nulls flag and element
// type, then per dimension its length and lower bound, then per element its
// length (-1 for NULL) and bytes, all big-endian. A nil raw, SQL NULL, holds
// no observations.
func (h *histogramSum) addBinary(raw []byte) error { return h.addBinarySigned(raw, 1) }

// addBinarySigned is addBinary adding sign times the histogram.
func (h *histogramSum) addBinarySigned(raw []byte, sign int64) error {
	if raw == nil {
		return nil
	}
	bad := func(what string) error {
		return fmt.Errorf("%w: bigint[] in binary format: %s", report.ErrInvalidHistogram, what)
	}
	if len(raw) < 12 {
		return bad("short header")
	}
	ndim, elem := int32(binary.BigEndian.Uint32(raw)), binary.BigEndian.Uint32(raw[8:])
	if elem != pgInt8OID {
		return bad(fmt.Sprintf("element type %d", elem))
	}
	if ndim == 0 {
		return nil
	}
	if ndim != 1 || len(raw) < 20 {
		return bad(fmt.Sprintf("%d dimensions", ndim))
	}
	n := int64(int32(binary.BigEndian.Uint32(raw[12:])))
	body := raw[20:]
	if n < 0 || int64(len(body)) != 12*n {
		return bad(fmt.Sprintf("%d bytes for %d elements", len(body), n))
	}
	value := func(i int) (int64, error) {
		e := body[12*i:]
		if l := int32(binary.BigEndian.Uint32(e)); l != 8 {
			return 0, bad(fmt.Sprintf("element %d of %d bytes", i, l))
		}
		return int64(binary.BigEndian.Uint64(e[4:])), nil
	}
	if n == 0 {
		return nil
	}
	first, err := value(0)
	if err != nil {
		return err
	}
	if err := checkEncoding(first, int(n-1)); err != nil {
		return err
	}
	for i := 1; i < int(n); i++ {
		c, err := value(i)
		if err != nil {
			return err
		}
		if c < 0 {
			return negativeCount(c, int(first)+i-1)
		}
		h.counts[int(first)+i-1] += sign * c
	}
	return nil
}

// checkEncoding refuses what DecodeHistogram refuses before looking at the
// counts: a first bucket, or a number of counts, out of range.
func checkEncoding(first int64, counts int) error {
	if first < 0 || first >= report.HistogramBuckets {
		return fmt.Errorf("%w: first bucket %d not in [0, %d)", report.ErrInvalidHistogram, first, report.HistogramBuckets)
	}
	if int64(counts) > report.HistogramBuckets-first {
		return fmt.Errorf("%w: %d counts from bucket %d exceed %d buckets", report.ErrInvalidHistogram, counts, first, report.HistogramBuckets)
	}
	return nil
}

func negativeCount(c int64, bucket int) error {
	return fmt.Errorf("%w: negative count %d in bucket %d", report.ErrInvalidHistogram, c, bucket)
}

// encode returns the sum in report's encoding, and empties h.
func (h *histogramSum) encode() []int64 {
	enc := report.Histogram{Counts: h.counts[:]}.Encode()
	clear(h.counts[:])
	return enc
}
