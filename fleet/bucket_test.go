package fleet

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRetryAPI checks retryAPI against a JetStream API that loses
// requests (a cluster electing its meta leader answers nothing), fails at
// once (no server connected), or answers no.
func TestRetryAPI(t *testing.T) {
	errNo := &jetstream.APIError{Code: 400, Description: "bad request"}
	tests := []struct {
		name string
		// answers says what attempt i gets: nil answers yes, errLost
		// waits for the attempt's deadline.
		answers   []error
		wantCalls int
		wantErr   error
		wantTime  time.Duration // virtual time retryAPI took
	}{
		{"answered at once", []error{nil}, 1, nil, 0},
		{"first two requests lost", []error{errLost, errLost, nil}, 3, nil, firstAttempt + 2*firstAttempt},
		{"not connected, then answered", []error{nats.ErrReconnectBufExceeded, nats.ErrNoResponders, nil}, 3, nil, 2 * retryPause},
		{"503 then answered", []error{&jetstream.APIError{Code: 503}, nil}, 2, nil, retryPause},
		{"an answer that says no is not retried", []error{errNo, nil}, 1, errNo, 0},
		{"bucket not found is not retried", []error{jetstream.ErrBucketNotFound, nil}, 1, jetstream.ErrBucketNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				start := time.Now()
				err := retryAPI(context.Background(), func(ctx context.Context) error {
					a := tt.answers[calls]
					calls++
					if a == errLost {
						<-ctx.Done()
						return ctx.Err()
					}
					return a
				})
				if !errors.Is(err, tt.wantErr) || calls != tt.wantCalls {
					t.Errorf("retryAPI = %v after %d calls, want %v after %d", err, calls, tt.wantErr, tt.wantCalls)
				}
				if took := time.Since(start); took != tt.wantTime {
					t.Errorf("retryAPI took %v, want %v", took, tt.wantTime)
				}
			})
		})
	}
}

// TestRetryAPIStopsWithItsContext checks that a request the cluster
// keeps losing ends with the caller's deadline, attempts growing to
// maxAttempt.
func TestRetryAPIStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var waits []time.Duration
		err := retryAPI(ctx, func(ctx context.Context) error {
			d, _ := ctx.Deadline()
			waits = append(waits, time.Until(d))
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("retryAPI = %v, want the caller's deadline exceeded", err)
		}
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 7 * time.Second}
		if len(waits) != len(want) {
			t.Fatalf("attempt deadlines = %v, want %v", waits, want)
		}
		for i := range want {
			if waits[i] != want[i] {
				t.Errorf("attempt %d waited %v, want %v (all: %v)", i, waits[i], want[i], waits)
			}
		}
	})
}

// errLost marks an attempt whose request the cluster loses.
var errLost = errors.New("lost")
