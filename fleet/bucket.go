package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure a Fleet handle.
type Options struct {
	// Replicas is the number of copies of every bucket in a JetStream
	// cluster; 0 means 1. Only publishers create the content buckets.
	Replicas int
	// Lease is the leader lease of the publishers' election; 0 means
	// DefaultLease. It is the TTL of the leader bucket.
	Lease time.Duration
	// RecordTTL is how long a node record lives without a refresh; 0
	// means DefaultRecordTTL. It is the TTL of the node bucket.
	RecordTTL time.Duration
	Logger    *slog.Logger
}

// Defaults of Options.
const (
	DefaultLease     = 10 * time.Second
	DefaultRecordTTL = 30 * time.Second
)

// Fleet is a handle on one fleet's buckets over a Conn. It does no I/O
// until used, so a node can start while NATS is down.
type Fleet struct {
	name string
	js   jetstream.JetStream
	conn *Conn
	opts Options
	log  *slog.Logger

	mu  sync.Mutex // guards kvs
	kvs map[bucketKind]jetstream.KeyValue
}

// bucketKind is one of the fleet's buckets.
type bucketKind string

const (
	bucketHead    bucketKind = "head"    // key "head": the signed root
	bucketBlobs   bucketKind = "blobs"   // key digest: entity blobs and manifest pages
	bucketLeader  bucketKind = "leader"  // key "leader": the publishers' lease, TTL Lease
	bucketNodes   bucketKind = "nodes"   // key node name: node records, TTL RecordTTL
	bucketTickets bucketKind = "tickets" // key "keys": sealed session-ticket keys
)

var allBuckets = []bucketKind{bucketHead, bucketBlobs, bucketLeader, bucketNodes, bucketTickets}

// Open returns a handle on fleet name over c.
func Open(c *Conn, name string, opts Options) (*Fleet, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("fleet name %q: use 1 to 64 letters, digits, - or _", name)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, fmt.Errorf("fleet %s: %w", name, err)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.RecordTTL <= 0 {
		opts.RecordTTL = DefaultRecordTTL
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{name: name, js: js, conn: c, opts: opts, log: log, kvs: make(map[bucketKind]jetstream.KeyValue)}, nil
}

// Name returns the fleet's name.
func (f *Fleet) Name() string { return f.name }

// BucketNames lists the JetStream buckets of the fleet.
func (f *Fleet) BucketNames() []string {
	out := make([]string, len(allBuckets))
	for i, k := range allBuckets {
		out[i] = f.bucketName(k)
	}
	return out
}

func (f *Fleet) bucketName(k bucketKind) string { return "certops_" + f.name + "_" + string(k) }

func (f *Fleet) config(k bucketKind) jetstream.KeyValueConfig {
	cfg := jetstream.KeyValueConfig{
		Bucket:      f.bucketName(k),
		Description: "certops fleet " + f.name + ": " + string(k),
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    f.opts.Replicas,
	}
	switch k {
	case bucketHead:
		cfg.History = headHistory
	case bucketLeader:
		cfg.TTL = f.opts.Lease
	case bucketNodes:
		cfg.TTL = f.opts.RecordTTL
	}
	return cfg
}

// headHistory is how many manifests the head bucket keeps, so that
// fleet wait finds the sequence of a revision published before the
// current head.
const headHistory = 64

// Setup creates the fleet's buckets, or updates their settings. A
// publisher calls it before publishing.
func (f *Fleet) Setup(ctx context.Context) error {
	for _, k := range allBuckets {
		f.mu.Lock()
		done := f.kvs[k] != nil
		f.mu.Unlock()
		if done {
			continue // created by an earlier, partly failed Setup
		}
		var kv jetstream.KeyValue
		err := retryAPI(ctx, func(ctx context.Context) (err error) {
			kv, err = f.js.CreateOrUpdateKeyValue(ctx, f.config(k))
			return err
		})
		if err != nil {
			return fmt.Errorf("fleet %s: create bucket %s: %w", f.name, f.bucketName(k), err)
		}
		f.mu.Lock()
		f.kvs[k] = retryingKV{kv}
		f.mu.Unlock()
	}
	return nil
}

// bucket binds one bucket, creating it when create is set and it does not
// exist yet (a node creates the node bucket if it starts first).
func (f *Fleet) bucket(ctx context.Context, k bucketKind, create bool) (jetstream.KeyValue, error) {
	f.mu.Lock()
	kv := f.kvs[k]
	f.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	err := retryAPI(ctx, func(ctx context.Context) (err error) {
		kv, err = f.js.KeyValue(ctx, f.bucketName(k))
		if errors.Is(err, jetstream.ErrBucketNotFound) && create {
			kv, err = f.js.CreateKeyValue(ctx, f.config(k))
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = f.js.KeyValue(ctx, f.bucketName(k))
			}
		}
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("fleet %s: bucket %s does not exist yet (no publisher has run): %w", f.name, f.bucketName(k), ErrNoHead)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet %s: bucket %s: %w", f.name, f.bucketName(k), err)
	}
	kv = retryingKV{kv}
	f.mu.Lock()
	f.kvs[k] = kv
	f.mu.Unlock()
	return kv, nil
}

// retryingKV retries the idempotent operations of a bucket, reading a
// key and writing a value, with retryAPI: right after a cluster lost and
// regained its quorum, its streams elect leaders and drop the requests
// they receive meanwhile: reading a key or the bucket's status, writing a
// value. Compare-and-set writes are not retried here: a
// lost but applied one would look like a conflict; their callers retry.
type retryingKV struct {
	jetstream.KeyValue
}

func (kv retryingKV) Get(ctx context.Context, key string) (e jetstream.KeyValueEntry, err error) {
	err = retryAPI(ctx, func(ctx context.Context) error {
		e, err = kv.KeyValue.Get(ctx, key)
		return err
	})
	return e, err
}

func (kv retryingKV) Status(ctx context.Context) (st jetstream.KeyValueStatus, err error) {
	err = retryAPI(ctx, func(ctx context.Context) error {
		st, err = kv.KeyValue.Status(ctx)
		return err
	})
	return st, err
}

func (kv retryingKV) Put(ctx context.Context, key string, value []byte) (rev uint64, err error) {
	err = retryAPI(ctx, func(ctx context.Context) error {
		rev, err = kv.KeyValue.Put(ctx, key, value)
		return err
	})
	return rev, err
}

// JetStream API attempts of bucket setup and binding: the first waits
// firstAttempt, each next one twice as long, up to maxAttempt.
const (
	firstAttempt = time.Second
	maxAttempt   = 8 * time.Second
)

// retryAPI calls op with a deadline per attempt, and again while an
// attempt got no answer, until ctx ends. A JetStream cluster that has not
// elected its meta leader yet (the first second or so after its servers
// start, or after a quorum came back) drops the API requests it receives:
// nats-server 2.9 answers nothing, later versions may answer 503 or
// "no responders"; and while the connection is between servers a
// request fails at once (Connect buffers nothing). Without a deadline per attempt, one lost request would
// hold a publisher's setup for its whole timeout (30 s); an attempt that
// timed out while the server went on creating a bucket is harmless, since
// creating a bucket that exists with the same settings succeeds.
func retryAPI(ctx context.Context, op func(context.Context) error) error {
	wait := firstAttempt
	for {
		actx, cancel := context.WithTimeout(ctx, wait)
		err := op(actx)
		fast := actx.Err() == nil // failed at once: not connected yet
		cancel()
		if err == nil || ctx.Err() != nil || !unanswered(err) {
			return err
		}
		if fast {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(retryPause):
			}
		}
		wait = min(2*wait, maxAttempt)
	}
}

// retryPause separates attempts that failed at once (the connection is
// between servers), so that retryAPI does not spin.
const retryPause = 200 * time.Millisecond

// unanswered reports an error that says JetStream did not (yet) answer,
// rather than answering no.
func unanswered(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 503 {
		return true // "JetStream system temporarily unavailable"
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// isNotFound reports a missing key.
func isNotFound(err error) bool { return errors.Is(err, jetstream.ErrKeyNotFound) }
