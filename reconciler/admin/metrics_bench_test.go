package admin

import (
	"testing"

	"certops/gateway"
)

// BenchmarkObserveHandshake measures the metrics hook the gateway calls on
// every handshake.
func BenchmarkObserveHandshake(b *testing.B) {
	m := NewMetrics()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveHandshake(gateway.HandshakeOK)
		}
	})
}
