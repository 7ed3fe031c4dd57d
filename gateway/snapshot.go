package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// snapshot is the immutable running state of the gateway. It is built
// aside by Apply and published with one atomic store; nothing mutates it
// after that, so handshakes read it without locks.
type snapshot struct {
	exact    map[string]*entry // normalised SNI -> entity
	wildcard map[string]*entry // parent of "*.parent" -> entity
	fallback *entry            // the entity whose SNIs contain "*", or nil
	byName   map[string]*entry
}

// entry is one entity ready to serve.
type entry struct {
	name   string
	config *tls.Config // per-entity config returned by GetConfigForClient
	mtls   bool
	chains []tls.Certificate
}

// lookup selects the entity for a ClientHello's server name: exact name,
// then the wildcard of the parent, then the default entity. The name is
// compared case-insensitively.
func (s *snapshot) lookup(serverName string) *entry {
	if serverName != "" {
		name := serverName
		if hasUpper(name) {
			name = strings.ToLower(name)
		}
		if e, ok := s.exact[name]; ok {
			return e
		}
		if p := parentOf(name); p != "" {
			if e, ok := s.wildcard[p]; ok {
				return e
			}
		}
	}
	return s.fallback
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// buildSnapshot checks cfg and builds the snapshot it describes. Per-entity
// configs are derived from base so that they share its session-ticket keys.
func buildSnapshot(cfg Config, base *tls.Config) (*snapshot, error) {
	s := &snapshot{
		exact:    make(map[string]*entry),
		wildcard: make(map[string]*entry),
		byName:   make(map[string]*entry, len(cfg.Entities)),
	}
	owner := make(map[string]string) // normalised SNI -> entity name
	var errs []error
	for _, ent := range cfg.Entities {
		if ent.Name == "" {
			errs = append(errs, errors.New("entity without a name"))
			continue
		}
		if _, dup := s.byName[ent.Name]; dup {
			errs = append(errs, fmt.Errorf("entity %q: name used twice", ent.Name))
			continue
		}
		if len(ent.Chains) == 0 {
			errs = append(errs, fmt.Errorf("entity %q: no certificate", ent.Name))
			continue
		}
		chains := make([]tls.Certificate, len(ent.Chains))
		copy(chains, ent.Chains)
		for i := range chains {
			if chains[i].Leaf == nil && len(chains[i].Certificate) > 0 {
				leaf, err := x509.ParseCertificate(chains[i].Certificate[0])
				if err != nil {
					errs = append(errs, fmt.Errorf("entity %q: chain %d: %w", ent.Name, i, err))
					continue
				}
				chains[i].Leaf = leaf
			}
		}
		e := &entry{name: ent.Name, chains: chains, mtls: ent.ClientCAs != nil}
		c := base.Clone()
		c.Certificates = chains
		c.GetConfigForClient = nil
		if ent.MinVersion != 0 {
			c.MinVersion = ent.MinVersion
		}
		if ent.MaxVersion != 0 {
			c.MaxVersion = ent.MaxVersion
		}
		if ent.ClientCAs != nil {
			c.ClientAuth = tls.RequireAndVerifyClientCert
			c.ClientCAs = ent.ClientCAs
		}
		e.config = c
		s.byName[ent.Name] = e
		if ent.Client {
			continue
		}
		for _, raw := range ent.SNIs {
			sni := normalizeSNI(raw)
			if prev, dup := owner[sni]; dup {
				errs = append(errs, fmt.Errorf("sni %q: claimed by both %q and %q", sni, prev, ent.Name))
				continue
			}
			owner[sni] = ent.Name
			switch {
			case sni == "*":
				s.fallback = e
			case strings.HasPrefix(sni, "*."):
				s.wildcard[sni[2:]] = e
			default:
				s.exact[sni] = e
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}
