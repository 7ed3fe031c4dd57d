//go:build race

package gateway

// raceStack is what the race detector's instrumentation adds to
// handshakeStack.
const raceStack = 16 << 10
