package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
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

// rotateTicketKeys makes a fresh key current and keeps the previous ones
// for decryption.
func (s *Server) rotateTicketKeys() {
	s.ticketMu.Lock()
	defer s.ticketMu.Unlock()
	var k [32]byte
	rand.Read(k[:]) // never fails (crypto/rand, Go 1.24)
	keys := append([][32]byte{k}, s.ticketKeys...)
	if kept := ticketKeysKept(s.ticketPeriod); len(keys) > kept {
		clear(keys[kept:])
		keys = keys[:kept]
	}
	s.ticketKeys = keys
	s.base.SetSessionTicketKeys(keys)
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
			s.rotateTicketKeys()
			s.log.Debug("rotated session ticket keys")
		}
	}
}
