//go:build !unix

package admin

// fileLimit has no portable source outside Unix: assume 1024.
func fileLimit() int { return 1024 }
