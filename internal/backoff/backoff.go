// Package backoff is the one retry-delay policy of certops: exponential
// from a minimum, capped, with optional jitter. Policy values are plain
// data and safe for concurrent use.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: Min for the first retry, doubling for
// each further one, never above Max, spread by ±Jitter of itself (0.2 is
// ±20%) so that many clients do not retry in step.
type Policy struct {
	Min, Max time.Duration
	Jitter   float64
}

// Delay returns the wait before retry number n (1 for the first; n < 1
// counts as 1).
func (p Policy) Delay(n int) time.Duration {
	d := p.Min
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d <= 0 || p.Jitter <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 - p.Jitter + 2*p.Jitter*rand.Float64()))
}
