package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Min: 5 * time.Second, Max: time.Minute}
	tests := []struct {
		name string
		n    int
		want time.Duration
	}{
		{"first", 1, 5 * time.Second},
		{"zero counts as first", 0, 5 * time.Second},
		{"second", 2, 10 * time.Second},
		{"fourth", 4, 40 * time.Second},
		{"capped", 5, time.Minute},
		{"far", 1000, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Delay(tt.n); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestDelayJitter(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Minute, Jitter: 0.2}
	for range 1000 {
		if d := p.Delay(3); d < 3200*time.Millisecond || d > 4800*time.Millisecond {
			t.Fatalf("Delay(3) = %v, want 4s ±20%%", d)
		}
	}
}
