//go:build unix

package admin

import "syscall"

// fileLimit is the process's soft limit on open file descriptors (Go
// raises it to the hard limit at start), or 1024 when it cannot be read.
func fileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 1024
	}
	return int(min(r.Cur, 1<<20)) // RLIM_INFINITY is all ones

}
