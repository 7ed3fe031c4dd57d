package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Role is a publisher's place in the election.
type Role string

// Roles.
const (
	RoleLeader  Role = "leader"
	RoleStandby Role = "standby"
)

// String returns the role as the status API shows it.
func (r Role) String() string { return string(r) }

// leaderKey is the key of the leader bucket.
const leaderKey = "leader"

// Election elects one leader among a fleet's publishers. The leader holds
// the key of the leader bucket, whose entries expire after the lease
// (Options.Lease), and renews it every third of the lease by
// compare-and-set; a standby tries to create the key as often, so it takes
// over within lease + lease/3 of the leader's last renewal (under two
// lease periods). A leader that cannot renew for a whole lease steps down
// by itself, so two leaders never overlap by more than the time NATS takes
// to expire the key.
type Election struct {
	f      *Fleet
	id     string
	leader atomic.Bool
	rev    uint64 // revision of our lease entry; owned by Run
	since  time.Time
}

// NewElection returns an election in which this publisher is id.
func (f *Fleet) NewElection(id string) *Election {
	return &Election{f: f, id: id}
}

// Role returns the publisher's current role.
func (e *Election) Role() Role {
	if e.leader.Load() {
		return RoleLeader
	}
	return RoleStandby
}

type lease struct {
	ID    string    `json:"id"`
	Since time.Time `json:"since"`
}

// Run takes part in the election until ctx ends, calling onChange (which
// may be nil) at every change of role. On return it resigns, so a standby
// takes over at once.
func (e *Election) Run(ctx context.Context, onChange func(Role)) error {
	period := e.f.opts.Lease / 3
	t := time.NewTicker(period)
	defer t.Stop()
	var lastRenew time.Time
	set := func(leader bool) {
		if e.leader.Swap(leader) != leader {
			if leader {
				e.f.log.Info("leading the fleet's publishers", "fleet", e.f.name, "publisher", e.id)
			} else {
				e.f.log.Warn("standing by: another publisher leads", "fleet", e.f.name, "publisher", e.id)
			}
			if onChange != nil {
				onChange(e.Role())
			}
		}
	}
	defer func() {
		if e.leader.Load() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if kv, err := e.f.bucket(rctx, bucketLeader, false); err == nil {
				_ = kv.Delete(rctx, leaderKey, jetstream.LastRevision(e.rev))
			}
			cancel()
			set(false)
		}
	}()
	for {
		step, cancel := context.WithTimeout(ctx, period)
		err := e.step(step)
		cancel()
		switch {
		case err == nil && e.rev != 0:
			lastRenew = time.Now()
			set(true)
		case err == nil:
			set(false)
		default:
			// NATS unreachable: keep leading only while the lease may
			// still be ours.
			if e.leader.Load() && time.Since(lastRenew) >= e.f.opts.Lease {
				e.rev = 0
				set(false)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// step renews the lease, or tries to take it. It leaves e.rev non-zero
// when this publisher holds the lease.
func (e *Election) step(ctx context.Context) error {
	kv, err := e.f.bucket(ctx, bucketLeader, true)
	if err != nil {
		return err
	}
	if e.rev != 0 {
		v, _ := json.Marshal(lease{ID: e.id, Since: e.since})
		rev, err := kv.Update(ctx, leaderKey, v, e.rev)
		if err == nil {
			e.rev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		// Our lease expired and someone else (or nobody) holds the key.
		e.rev = 0
	}
	since := time.Now().UTC()
	v, _ := json.Marshal(lease{ID: e.id, Since: since})
	rev, err := kv.Create(ctx, leaderKey, v)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	e.rev, e.since = rev, since
	return nil
}

// Leader returns the id of the publisher holding the lease, or "".
func (f *Fleet) Leader(ctx context.Context) (string, error) {
	kv, err := f.bucket(ctx, bucketLeader, false)
	if err != nil {
		return "", err
	}
	en, err := kv.Get(ctx, leaderKey)
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var l lease
	if err := json.Unmarshal(en.Value(), &l); err != nil {
		return "", err
	}
	return l.ID, nil
}
