package gateway

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
)

// ConnectionInfo is the JSON answer of the gateway when no upstream is
// configured: what the client negotiated. Tests and examples read it.
type ConnectionInfo struct {
	SNI           string `json:"sni"`
	Entity        string `json:"entity"`
	TLSVersion    string `json:"tls_version"`
	CipherSuite   string `json:"cipher_suite"`
	Protocol      string `json:"protocol"`
	ClientSubject string `json:"client_subject,omitempty"`
	Host          string `json:"host"`
}

// describe answers a request with the ConnectionInfo of its connection.
func (s *Server) describe(w http.ResponseWriter, r *http.Request) {
	info := ConnectionInfo{Host: r.Host, Protocol: r.Proto}
	if cs := r.TLS; cs != nil {
		info.SNI = cs.ServerName
		info.TLSVersion = tls.VersionName(cs.Version)
		info.CipherSuite = tls.CipherSuiteName(cs.CipherSuite)
		if e := s.snap.Load().lookup(cs.ServerName); e != nil {
			info.Entity = e.name
		}
		if len(cs.PeerCertificates) > 0 {
			info.ClientSubject = cs.PeerCertificates[0].Subject.String()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}
