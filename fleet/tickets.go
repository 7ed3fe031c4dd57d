package fleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Session-ticket keys are shared by every node of a fleet, so that a
// ticket issued by one node resumes on another behind a load balancer
// (the gateway's per-entity binding still holds: the tag is inside the
// ticket). The leader publisher rotates them; the value on the bus is
// sealed with the data key.

// TicketKeyRotation is how often the leader makes a new ticket key.
const TicketKeyRotation = 12 * time.Hour

// TicketKeysKept is how many keys decrypt tickets: the current one and the
// two before it. With a key every TicketKeyRotation, a node (which uses
// exactly these keys: gateway.Server.SetTicketKeys) accepts a ticket for
// 24 to 36 hours after it issued it, depending on when in its key's 12
// hours it was issued, plus up to the leader's 10-minute check period;
// not for the 7 days crypto/tls tells clients (a later ticket gets a full
// handshake).
const TicketKeysKept = 3

const ticketsKey = "keys"

// ticketWire is the value of the tickets bucket.
type ticketWire struct {
	Rotated time.Time `json:"rotated"`
	Keys    string    `json:"keys"` // sealed JSON array of base64 keys, current first
}

// TicketKeys are a fleet's session-ticket keys, current first. They are
// secret: never log them.
type TicketKeys struct {
	Rotated time.Time
	Keys    [][32]byte
}

func ticketContext(fleet string) string { return sealContext(fleet, "", "session-ticket-keys") }

// RotateTicketKeys makes a new current ticket key when there is none or
// the current one is older than every (0: TicketKeyRotation), keeping the
// two previous ones; the leader publisher calls it periodically. It
// reports whether it rotated.
func (f *Fleet) RotateTicketKeys(ctx context.Context, dk *DataKey, every time.Duration, now time.Time) (bool, error) {
	if dk == nil {
		return false, errors.New("fleet: ticket keys need a data key")
	}
	if every <= 0 {
		every = TicketKeyRotation
	}
	kv, err := f.bucket(ctx, bucketTickets, false)
	if err != nil {
		return false, err
	}
	var cur *TicketKeys
	var rev uint64
	e, err := kv.Get(ctx, ticketsKey)
	switch {
	case isNotFound(err):
	case err != nil:
		return false, fmt.Errorf("fleet %s: read ticket keys: %w", f.name, err)
	default:
		rev = e.Revision()
		cur, err = openTickets(f.name, e.Value(), dk)
		if err != nil {
			// Sealed with another data key (rotated): start afresh.
			f.log.Warn("the fleet's ticket keys do not open with this data key; replacing them", "fleet", f.name)
			cur = nil
		}
	}
	if cur != nil && now.Sub(cur.Rotated) < every {
		return false, nil
	}
	var k [32]byte
	rand.Read(k[:])
	next := TicketKeys{Rotated: now.UTC(), Keys: [][32]byte{k}}
	if cur != nil {
		next.Keys = append(next.Keys, cur.Keys...)
		next.Keys = next.Keys[:min(len(next.Keys), TicketKeysKept)]
	}
	plain, _ := json.Marshal(next.Keys)
	defer clear(plain)
	v, _ := json.Marshal(ticketWire{Rotated: next.Rotated, Keys: dk.sealRandom(ticketContext(f.name), plain)})
	if rev == 0 {
		_, err = kv.Create(ctx, ticketsKey, v)
	} else {
		_, err = kv.Update(ctx, ticketsKey, v, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil // another leader rotated meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("fleet %s: write ticket keys: %w", f.name, err)
	}
	return true, nil
}

func openTickets(fleet string, b []byte, dk *DataKey) (*TicketKeys, error) {
	var w ticketWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, refuse(ReasonMalformed, "ticket keys do not parse")
	}
	plain, err := dk.open(ticketContext(fleet), w.Keys)
	if err != nil {
		return nil, refuse(ReasonSealed, "ticket keys: %v", err)
	}
	defer clear(plain)
	var keys [][32]byte
	if err := json.Unmarshal(plain, &keys); err != nil || len(keys) == 0 || len(keys) > TicketKeysKept {
		return nil, refuse(ReasonMalformed, "ticket keys do not parse")
	}
	return &TicketKeys{Rotated: w.Rotated, Keys: keys}, nil
}

// TicketKeys returns the fleet's current ticket keys.
func (f *Fleet) TicketKeys(ctx context.Context, dk *DataKey) (*TicketKeys, error) {
	kv, err := f.bucket(ctx, bucketTickets, false)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, ticketsKey)
	if isNotFound(err) {
		return nil, ErrNoHead
	}
	if err != nil {
		return nil, err
	}
	return openTickets(f.name, e.Value(), dk)
}

// WatchTicketKeys calls set with the fleet's ticket keys now and at every
// rotation until ctx ends, retrying while NATS or the bucket is missing.
// Keys that do not open are logged and skipped: the node keeps its own.
func (f *Fleet) WatchTicketKeys(ctx context.Context, dk *DataKey, set func(*TicketKeys)) {
	for ctx.Err() == nil {
		kv, err := f.bucket(ctx, bucketTickets, false)
		var w jetstream.KeyWatcher
		if err == nil {
			w, err = kv.Watch(ctx, ticketsKey, jetstream.IgnoreDeletes())
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			continue
		}
	follow:
		for {
			select {
			case <-ctx.Done():
				break follow
			case e, ok := <-w.Updates():
				if !ok {
					break follow
				}
				if e == nil {
					continue
				}
				tk, err := openTickets(f.name, e.Value(), dk)
				if err != nil {
					f.log.Warn("fleet ticket keys refused; keeping the node's own", "fleet", f.name, "err", err)
					continue
				}
				set(tk)
			}
		}
		w.Stop()
	}
}
