package fleet

import (
	"context"
	"errors"
	"fmt"
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

// lossyKV is a real bucket whose next compare-and-set writes lose their
// answer, as a request sent while the head stream elects its leader: the
// server applies the write (apply) or never sees it, and the caller waits
// for its deadline. other, when set, is written instead of the caller's
// value: another publisher that won meanwhile.
type lossyKV struct {
	jetstream.KeyValue
	lose  int
	apply bool
	other []byte
	calls int
}

func (kv *lossyKV) write(ctx context.Context, value []byte, cas func(context.Context, []byte) (uint64, error)) (uint64, error) {
	kv.calls++
	if kv.lose == 0 {
		return cas(ctx, value)
	}
	kv.lose--
	if kv.other != nil {
		value = kv.other
	}
	if kv.apply || kv.other != nil {
		if _, err := cas(context.Background(), value); err != nil {
			return 0, err
		}
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

func (kv *lossyKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return kv.write(ctx, value, func(ctx context.Context, v []byte) (uint64, error) { return kv.KeyValue.Create(ctx, key, v, opts...) })
}

func (kv *lossyKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	return kv.write(ctx, value, func(ctx context.Context, v []byte) (uint64, error) { return kv.KeyValue.Update(ctx, key, v, last) })
}

// TestMoveHead checks that moving head survives a lost answer: a write
// applied is not written twice, a write lost is written again, and a head
// another publisher moved meanwhile is a conflict for the caller to build
// on, never overwritten.
func TestMoveHead(t *testing.T) {
	ns := embeddedServer(t)
	tests := []struct {
		name      string
		exists    bool // head holds a manifest before the move
		lossy     lossyKV
		wantErr   error
		wantCalls int
		wantHead  string // what head holds after the move
		wantRevs  uint64 // how many writes head's history holds
	}{
		{"created", false, lossyKV{}, nil, 1, "new", 1},
		{"updated", true, lossyKV{}, nil, 1, "new", 2},
		{"create applied, answer lost", false, lossyKV{lose: 1, apply: true}, nil, 1, "new", 1},
		{"update applied, answer lost", true, lossyKV{lose: 1, apply: true}, nil, 1, "new", 2},
		{"two updates lost unapplied, the third lands", true, lossyKV{lose: 2}, nil, 3, "new", 2},
		{"another publisher moved head meanwhile", true, lossyKV{lose: 1, other: []byte("theirs")}, jetstream.ErrKeyRevisionMismatch, 1, "theirs", 2},
		{"another publisher created head meanwhile", false, lossyKV{lose: 1, other: []byte("theirs")}, jetstream.ErrKeyRevisionMismatch, 1, "theirs", 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := openFleet(t, ns, fmt.Sprintf("move%d", i), Options{})
			if err := f.Setup(t.Context()); err != nil {
				t.Fatal(err)
			}
			kv, err := f.bucket(t.Context(), bucketHead, false)
			if err != nil {
				t.Fatal(err)
			}
			var cur jetstream.KeyValueEntry
			if tt.exists {
				if _, err := kv.Put(t.Context(), headKey, []byte("old")); err != nil {
					t.Fatal(err)
				}
				if cur, err = kv.Get(t.Context(), headKey); err != nil {
					t.Fatal(err)
				}
			}
			lossy := tt.lossy
			lossy.KeyValue = kv
			// Each lost answer costs its attempt's deadline: 1 s, then 2 s.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			err = moveHead(ctx, &lossy, cur, []byte("new"))
			if !errors.Is(err, tt.wantErr) || lossy.calls != tt.wantCalls {
				t.Errorf("moveHead = %v after %d writes, want %v after %d", err, lossy.calls, tt.wantErr, tt.wantCalls)
			}
			now, err := kv.Get(t.Context(), headKey)
			if err != nil {
				t.Fatal(err)
			}
			if string(now.Value()) != tt.wantHead || now.Revision() != tt.wantRevs {
				t.Errorf("head holds %q at revision %d, want %q at %d", now.Value(), now.Revision(), tt.wantHead, tt.wantRevs)
			}
		})
	}
}
