package reconciler

import (
	"math/rand/v2"
	"time"
)

// Retry and polling bounds.
const (
	backoffMin = time.Second
	backoffMax = 5 * time.Minute
)

// backoff returns the delay before retry number n (1 for the first retry)
// after a retryable failure: exponential from backoffMin, capped at
// backoffMax, with ±20% jitter so that a fleet of gateways does not hammer
// a recovering Git server in step.
func backoff(n int) time.Duration {
	d := backoffMin
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return jitter(d, 0.2)
}

// jitter spreads d uniformly over ±frac of itself.
func jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 - frac + 2*frac*rand.Float64()))
}
