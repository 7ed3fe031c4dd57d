package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"slices"
	"time"
)

// Session tickets.
//
// The long-lived base tls.Config owns the session-ticket keys: every
// entity's config encrypts and decrypts tickets through it
// (Config.EncryptTicket/DecryptTicket), so the keys survive every Apply and
// resumption keeps working across rotations. The keys rotate on their own
// schedule (Options.TicketKeyRotation), and the previous keys stay
// available for decryption for TicketLifetime, the lifetime hint the
// client is given.
//
// Each ticket carries a tag naming the entity that issued it and the
// version of that entity's client-certificate policy. A ticket presented
// to another entity, or to the same entity after its client CAs or depth
// changed, is ignored and the client gets a full handshake. Measured on Go
// 1.26.8: without the tag, a ticket minted by entity A resumes on entity B
// (DidResume) because all entities share the ticket keys. crypto/tls
// itself refuses a session without a client certificate on an entity that
// requires one, and one whose verified chains no longer end in the
// entity's current CAs; verifyConnection checks that again, with the depth
// bound, on every resumed session.
//
// Several gateways behind one load balancer resume each other's sessions
// when they share their keys: [Server.SetTicketKeys] replaces the server's
// own keys and rotation with keys distributed from outside (a certops
// fleet's leader publisher, DESIGN.md 9). The entity tag is inside the
// encrypted ticket, so the binding above holds across servers: a ticket
// issued for entity A on one server does not resume entity B on another.
// The policy version in the tag is counted by each server from its own
// history of Applies, so across servers (and across a restart) it tells
// policies apart only as far as their histories agree; a session that
// does resume is verified again in any case, against the client CAs and
// depth of the server it resumes on (verifyConnection, above).

// ticketTagPrefix starts the tag in SessionState.Extra.
const ticketTagPrefix = "certops.entity\x00"

// TicketLifetime is how long a session ticket is accepted. It is the
// lifetime hint crypto/tls sends with every TLS 1.3 ticket (fixed at 7 days
// there, and the age past which crypto/tls refuses any ticket, TLS 1.2
// included), so the keys that decrypt tickets are kept this long after
// they stop encrypting new ones: a client is never told a ticket is good
// for longer than it is. (TLS 1.2 tickets carry no hint.)
//
// The gateway resumes sessions with tickets only (RFC 5077, RFC 8446
// 4.6.1): crypto/tls keeps no server-side session cache, so a TLS 1.2
// client that offers only a session ID gets a full handshake.
const TicketLifetime = 7 * 24 * time.Hour

// DefaultTicketKeyRotation is how often session-ticket keys rotate unless
// Options.TicketKeyRotation says otherwise: new tickets are encrypted with
// a key at most this old.
const DefaultTicketKeyRotation = 12 * time.Hour

// ticketKeysKept is how many keys decrypt tickets when they rotate every
// period: the current one and enough previous ones to cover TicketLifetime.
func ticketKeysKept(period time.Duration) int {
	return 1 + int((TicketLifetime+period-1)/period)
}

func (s *Server) wrapSession(e *entry, cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	ss.Extra = append(ss.Extra, e.ticketTag)
	return s.base.EncryptTicket(cs, ss)
}

func (s *Server) unwrapSession(e *entry, identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := s.base.DecryptTicket(identity, cs)
	if err != nil || ss == nil {
		return nil, nil // not ours, or expired keys: full handshake
	}
	for _, x := range ss.Extra {
		if bytes.HasPrefix(x, []byte(ticketTagPrefix)) {
			if bytes.Equal(x, e.ticketTag) {
				return ss, nil
			}
			break
		}
	}
	return nil, nil // minted by another entity or policy: full handshake
}

// MaxSharedTicketKeys bounds the keys SetTicketKeys takes: each is tried
// in turn on every ticket presented that the current one does not open.
const MaxSharedTicketKeys = 32

// SetTicketKeys makes keys the session-ticket keys, current first: new
// tickets are encrypted with keys[0], and a ticket encrypted with any of
// keys resumes (within TicketLifetime, and for the entity and policy that
// issued it). Servers given the same keys resume each other's sessions.
//
// From the first call on, the server stops rotating keys itself: the
// caller owns rotation and expiry, and calls SetTicketKeys again with the
// new list at every rotation. A ticket is therefore accepted for as long
// as its key stays in the lists the caller gives, whatever TicketLifetime
// says: with a certops fleet, whose leader makes a key every 12 hours and
// sends the current one and the two previous ones, that is 24 to 36
// hours after issue (clients are still told 7 days; a ticket presented
// later gets a full handshake). The server's own keys are dropped, so
// tickets it issued before the first call get a full handshake once.
//
// keys is copied. It must hold 1 to MaxSharedTicketKeys keys, else
// SetTicketKeys returns an error and changes nothing. It is safe to call
// concurrently with handshakes and Apply; tickets in flight are not
// affected.
func (s *Server) SetTicketKeys(keys [][32]byte) error {
	if len(keys) == 0 || len(keys) > MaxSharedTicketKeys {
		return fmt.Errorf("gateway: %d session ticket keys, want 1 to %d", len(keys), MaxSharedTicketKeys)
	}
	keys = slices.Clone(keys)
	s.ticketMu.Lock()
	defer s.ticketMu.Unlock()
	clear(s.ticketKeys)
	s.ticketKeys, s.ticketsShared = keys, true
	s.base.SetSessionTicketKeys(keys)
	return nil
}

// rotateTicketKeys makes a fresh key current and keeps the previous ones
// for decryption, unless the keys come from SetTicketKeys. It reports
// whether it rotated.
func (s *Server) rotateTicketKeys() bool {
	s.ticketMu.Lock()
	defer s.ticketMu.Unlock()
	if s.ticketsShared {
		return false
	}
	var k [32]byte
	rand.Read(k[:]) // never fails (crypto/rand, Go 1.24)
	keys := append([][32]byte{k}, s.ticketKeys...)
	if kept := ticketKeysKept(s.ticketPeriod); len(keys) > kept {
		clear(keys[kept:])
		keys = keys[:kept]
	}
	s.ticketKeys = keys
	s.base.SetSessionTicketKeys(keys)
	return true
}

// rotateTicketKeysEvery rotates the keys every period until ctx is done.
func (s *Server) rotateTicketKeysEvery(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.rotateTicketKeys() {
				s.log.Debug("rotated session ticket keys")
			}
		}
	}
}
