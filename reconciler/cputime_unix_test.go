//go:build unix

package reconciler

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used, so
// that benchmarks can report a figure that does not depend on how busy the
// machine is.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
