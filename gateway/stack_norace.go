//go:build !race

package gateway

// raceStack is what the race detector's instrumentation adds to
// handshakeStack: nothing without it.
const raceStack = 0
