package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDurationHistogram(t *testing.T) {
	h := newDurationHistogram("test_seconds", "Test.", []float64{50e-6, 1e-3, 0.3})
	for _, d := range []time.Duration{
		-time.Second,          // counts as 0: first bucket
		0,                     // first bucket
		50 * time.Microsecond, // on a bound: that bucket (le)
		50*time.Microsecond + 1,
		time.Millisecond,
		300 * time.Millisecond,
		300*time.Millisecond + 1, // +Inf
		time.Hour,                // +Inf
	} {
		h.observe(d)
	}
	expected := `
# HELP tandem_test_seconds Test.
# TYPE tandem_test_seconds histogram
tandem_test_seconds_bucket{le="5e-05"} 3
tandem_test_seconds_bucket{le="0.001"} 5
tandem_test_seconds_bucket{le="0.3"} 6
tandem_test_seconds_bucket{le="+Inf"} 8
tandem_test_seconds_sum 3600.601100002
tandem_test_seconds_count 8
`
	if err := testutil.CollectAndCompare(h, strings.NewReader(expected)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(h); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestDurationBucketsExact(t *testing.T) {
	h := newDurationHistogram("x", "X.", durationBuckets)
	for i, b := range durationBuckets {
		if got := h.bounds[i].Seconds(); got != b {
			t.Errorf("bucket %d: bound %v, want %v", i, got, b)
		}
	}
}

func TestDurationHistogramUnsorted(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("unsorted buckets accepted")
		}
	}()
	newDurationHistogram("x", "X.", []float64{1, 0.5})
}
