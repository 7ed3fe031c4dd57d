package gateway

// handshakeStack is the goroutine stack that a connection's handshake and
// its requests fit in: 16 KiB held every handshake of TestHandshakeStack
// (ECDSA, RSA and Ed25519 keys, TLS 1.2 and 1.3, client certificates) and
// its request without the stack moving, on amd64; the race detector's
// instrumentation needs twice that (raceStack).
const handshakeStack = 16<<10 + raceStack

// growStack grows the calling goroutine's stack to handshakeStack in one
// step, while the stack is shallow, by calling a function whose frame
// needs most of it. net/http starts each connection's goroutine with the
// runtime's starting stack (2-8 KiB, the average it measured), and the
// handshake doubled it twice from deep inside crypto/tls, each time
// copying the stack and adjusting every one of its frames: 2.9% of the
// daemon's CPU per handshake over 10,000 names in a profile, and 4.8% of
// a plain crypto/tls server's (docs/performance.md). Grown here, the copy
// adjusts the few frames of net/http's connection goroutine, and the
// stack is no larger than the handshake made it: the runtime frees it
// when the goroutine ends, and the collector shrinks it to what an idle
// connection uses. (CockroachDB grows its stacks ahead the same way, in
// util/growstack.)
//
// The frame is half of handshakeStack: stacks are a power of two in size,
// and the runtime grows one to the smallest that holds the frame, the
// runtime's guard and what the goroutine uses already (1-2 KiB here). It
// is an array the function writes and reads, so that the compiler keeps
// it; zeroing it costs 1-1.5 µs.
//
//go:noinline
func growStack(i int) byte {
	var frame [handshakeStack / 2]byte
	frame[i] = 1
	return frame[i/2]
}
