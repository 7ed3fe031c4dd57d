package gateway

import (
	"crypto/x509"
	"time"
)

// EntityInfo describes one entity of the running configuration, for
// metrics and status pages.
type EntityInfo struct {
	Name   string
	Client bool // a type: client entity, presented to the upstream
	MTLS   bool // requires client certificates
	Chains []ChainInfo
}

// ChainInfo describes one certificate chain of an entity.
type ChainInfo struct {
	Algorithm string    // "ECDSA", "Ed25519" or "RSA"
	NotAfter  time.Time // expiry of the leaf certificate
}

// Entities returns the entities of the running configuration in the order
// of the Config that was applied, with the algorithm and expiry of each
// chain in the order they are offered. It parses nothing, so it is cheap
// enough for every metrics scrape; it returns nil before the first Apply.
func (s *Server) Entities() []EntityInfo {
	snap := s.snap.Load()
	if len(snap.entities) == 0 {
		return nil
	}
	out := make([]EntityInfo, len(snap.entities))
	for i, rec := range snap.entities {
		info := EntityInfo{
			Name:   string(snap.bytes(rec.name)),
			Client: rec.client,
			MTLS:   rec.pool >= 0,
			Chains: make([]ChainInfo, rec.nChains),
		}
		for n := range info.Chains {
			c := snap.chains[int(rec.chain)+n]
			info.Chains[n] = ChainInfo{Algorithm: algorithmName(c.alg), NotAfter: c.expiry()}
		}
		out[i] = info
	}
	return out
}

func algorithmName(a x509.PublicKeyAlgorithm) string { return a.String() }
