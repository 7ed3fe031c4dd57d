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
// available for decryption for two more periods.
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

// ticketKeysKept is how many keys decrypt tickets: the current one and
// the two before it.
const ticketKeysKept = 3

// DefaultTicketKeyRotation is how often session-ticket keys rotate unless
// Options.TicketKeyRotation says otherwise.
const DefaultTicketKeyRotation = 12 * time.Hour

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
	if len(keys) > ticketKeysKept {
		clear(keys[ticketKeysKept:])
		keys = keys[:ticketKeysKept]
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
