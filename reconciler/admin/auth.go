package admin

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// ErrNoToken is returned by [CheckAddress] for a non-loopback admin address
// without a bearer token.
var ErrNoToken = errors.New("the admin API listens beyond loopback without a bearer token; give --admin-token-file or listen on 127.0.0.1")

// CheckAddress reports whether an admin API may listen on addr (host:port,
// as net.Listen takes it) with the given bearer token: an address that is
// not loopback ("", "0.0.0.0", "::" and every routable address) needs a
// token, because POST /api/v1/reconcile would otherwise be open to the
// network. The daemon calls it before it listens.
func CheckAddress(addr string, token []byte) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if len(token) > 0 || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("admin address %q: %w", addr, ErrNoToken)
}

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadSecretFile reads a token or webhook secret from path, without the
// surrounding white space that editors and `echo` add. An empty file is an
// error: an empty secret would accept anything.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("read secret: %s is empty", path)
	}
	return b, nil
}

// requireToken wraps a mutating handler: when a token is configured, the
// request must carry "Authorization: Bearer <token>" (compared in constant
// time) or it is answered 401. Without a token the handler is reachable
// only because [CheckAddress] allowed a loopback address.
func (s *Server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.opts.Token) > 0 {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.opts.Token) != 1 {
				s.log.Warn("admin request refused: bad or missing bearer token", "path", r.URL.Path, "remote_addr", r.RemoteAddr)
				w.Header().Set("WWW-Authenticate", `Bearer realm="certops"`)
				writeError(w, http.StatusUnauthorized, "bad or missing bearer token")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
