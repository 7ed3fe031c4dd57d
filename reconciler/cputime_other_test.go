//go:build !unix

package reconciler

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
