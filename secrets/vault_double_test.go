package secrets

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeClock is the clock shared by a vault double and the client under
// test, so that token lifetimes can be crossed without waiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// vaultDouble is an in-process Vault that follows the wire format of
// Vault's HTTP API (https://developer.hashicorp.com/vault/api-docs): KV v1
// and v2 reads, sys/internal/ui/mounts, AppRole and Kubernetes logins,
// tokens whose TTL really runs out unless renewed (auth/token/lookup-self,
// renew-self, revoke-self), policies that refuse a path with 403,
// X-Vault-Token and X-Vault-Namespace, and its {"errors": [...]} error
// bodies. It serves over loopback (srv) or in memory (transport), the
// latter for testing/synctest bubbles, where its clock is the bubble's.
// Outages: setDown refuses connections (in memory), setHang makes every
// request hang until the client gives up.
type vaultDouble struct {
	srv   *httptest.Server
	clock clock
	fake  *fakeClock // the clock of newVaultDouble, which tests move

	mu        sync.Mutex
	namespace string                    // required X-Vault-Namespace; "" = none
	mounts    map[string]string         // mount path → options.version ("" = options null)
	secrets   map[string]map[string]any // secret path (without data/) → fields
	tokens    map[string]time.Time      // valid token → expiry (zero = never)
	roleID    string
	secretID  string
	k8sRole   string
	k8sJWT    string
	lease     int64 // lease_duration of login tokens, seconds
	renewable bool
	fail      []int // statuses answered to the next requests, in order
	sealed    bool
	block     chan struct{} // when set, KV reads wait for it to close
	requests  []string      // "METHOD /v1/path" of every request
	agents    []string      // User-Agent of every request
	nTokens   int
	deny      map[string]bool // API paths that every token's policy refuses
	maxTTL    time.Duration   // renew-self never extends a token past issue+maxTTL; 0 = no limit
	issued    map[string]time.Time
	down      bool          // the in-memory transport refuses connections
	hang      chan struct{} // when set, every request waits for it to close or the client to give up
}

// clock is the double's idea of now.
type clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// newMemVaultDouble returns a double served in memory only and on the real
// clock (the bubble's fake one inside testing/synctest).
func newMemVaultDouble(testing.TB) *vaultDouble { return makeVaultDouble(realClock{}) }

// transport serves requests by calling the handler directly: no socket, so
// a synctest bubble's clock advances while a request hangs.
func (d *vaultDouble) transport() http.RoundTripper { return memTransport{d} }

type memTransport struct{ d *vaultDouble }

func (t memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.d.mu.Lock()
	down := t.d.down
	t.d.mu.Unlock()
	if down {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.d.serve(rec, req)
	}()
	select {
	case <-done:
		return rec.Result(), nil
	case <-req.Context().Done():
		<-done // the handler watches the same context
		return nil, req.Context().Err()
	}
}

func (d *vaultDouble) setDown(b bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = b
}

func (d *vaultDouble) setHang(b bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case b && d.hang == nil:
		d.hang = make(chan struct{})
	case !b && d.hang != nil:
		close(d.hang)
		d.hang = nil
	}
}

// liveTokens counts the tokens that are valid now.
func (d *vaultDouble) liveTokens() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for tok := range d.tokens {
		if d.validLocked(tok) {
			n++
		}
	}
	return n
}

func newVaultDouble(tb testing.TB) *vaultDouble {
	tb.Helper()
	d := makeVaultDouble(newFakeClock())
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	tb.Cleanup(d.srv.Close)
	return d
}

func makeVaultDouble(c clock) *vaultDouble {
	fc, _ := c.(*fakeClock)
	return &vaultDouble{
		clock:     c,
		fake:      fc,
		mounts:    map[string]string{"secret/": "2", "kv/": ""},
		secrets:   map[string]map[string]any{},
		tokens:    map[string]time.Time{"root-token": {}},
		lease:     3600,
		renewable: true,
		deny:      map[string]bool{},
		issued:    map[string]time.Time{},
	}
}

func (d *vaultDouble) put(path string, fields map[string]any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.secrets[path] = fields
}

func (d *vaultDouble) failNext(statuses ...int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = append(d.fail, statuses...)
}

func (d *vaultDouble) setSealed(b bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sealed = b
}

func (d *vaultDouble) revokeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.tokens)
}

// log returns the requests received so far and forgets them.
func (d *vaultDouble) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.requests
	d.requests = nil
	return r
}

func (d *vaultDouble) count(prefix string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range d.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func vaultReply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func vaultErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	vaultReply(w, status, map[string]any{"errors": msgs})
}

func (d *vaultDouble) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	d.requests = append(d.requests, r.Method+" /v1/"+path)
	d.agents = append(d.agents, r.Header.Get("User-Agent"))
	if hang := d.hang; hang != nil {
		d.mu.Unlock()
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
		d.mu.Lock()
	}
	if d.sealed {
		d.mu.Unlock()
		vaultErrors(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if len(d.fail) > 0 {
		status := d.fail[0]
		d.fail = d.fail[1:]
		d.mu.Unlock()
		vaultErrors(w, status, http.StatusText(status))
		return
	}
	if d.namespace != "" && r.Header.Get("X-Vault-Namespace") != d.namespace {
		d.mu.Unlock()
		vaultErrors(w, http.StatusNotFound, "no handler for route")
		return
	}
	block := d.block
	d.mu.Unlock()

	switch {
	case r.Method == http.MethodPost && path == "auth/approle/login":
		var in struct{ RoleID, SecretID string }
		var raw map[string]string
		json.NewDecoder(r.Body).Decode(&raw)
		in.RoleID, in.SecretID = raw["role_id"], raw["secret_id"]
		d.mu.Lock()
		ok := in.RoleID == d.roleID && in.SecretID == d.secretID && d.roleID != ""
		d.mu.Unlock()
		if !ok {
			vaultErrors(w, http.StatusBadRequest, "invalid role or secret ID")
			return
		}
		d.issue(w)
	case r.Method == http.MethodPost && path == "auth/kubernetes/login":
		var raw map[string]string
		json.NewDecoder(r.Body).Decode(&raw)
		d.mu.Lock()
		ok := raw["role"] == d.k8sRole && raw["jwt"] == d.k8sJWT && d.k8sRole != ""
		d.mu.Unlock()
		if !ok {
			vaultErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		d.issue(w)
	case r.Method == http.MethodGet && path == "auth/token/lookup-self":
		tok := r.Header.Get("X-Vault-Token")
		d.mu.Lock()
		if !d.validLocked(tok) {
			d.mu.Unlock()
			vaultErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		var ttl int64
		if exp := d.tokens[tok]; !exp.IsZero() {
			ttl = int64(exp.Sub(d.clock.Now()) / time.Second)
		}
		renewable := d.renewable && ttl > 0
		d.mu.Unlock()
		vaultReply(w, http.StatusOK, map[string]any{"data": map[string]any{
			"id": tok, "accessor": "acc", "policies": []string{"default"}, "ttl": ttl, "renewable": renewable,
		}})
	case r.Method == http.MethodPost && path == "auth/token/renew-self":
		tok := r.Header.Get("X-Vault-Token")
		d.mu.Lock()
		if !d.validLocked(tok) {
			d.mu.Unlock()
			vaultErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		exp := d.clock.Now().Add(time.Duration(d.lease) * time.Second)
		if at, ok := d.issued[tok]; ok && d.maxTTL > 0 && exp.After(at.Add(d.maxTTL)) {
			exp = at.Add(d.maxTTL) // Vault caps renewals at the token's max TTL
		}
		d.tokens[tok] = exp
		lease, renewable := int64(exp.Sub(d.clock.Now())/time.Second), d.renewable
		d.mu.Unlock()
		vaultReply(w, http.StatusOK, map[string]any{"auth": map[string]any{
			"client_token": tok, "accessor": "acc", "policies": []string{"default"},
			"lease_duration": lease, "renewable": renewable,
		}})
	case r.Method == http.MethodPost && path == "auth/token/revoke-self":
		tok := r.Header.Get("X-Vault-Token")
		d.mu.Lock()
		ok := d.validLocked(tok)
		delete(d.tokens, tok)
		d.mu.Unlock()
		if !ok {
			vaultErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "sys/internal/ui/mounts/"):
		if !d.valid(r.Header.Get("X-Vault-Token")) {
			vaultErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		mount, version, ok := d.mountOf(strings.TrimPrefix(path, "sys/internal/ui/mounts/"))
		if !ok {
			vaultErrors(w, http.StatusForbidden, "preflight capability check returned 403, please ensure client's policies grant access to path")
			return
		}
		var options any
		if version != "" {
			options = map[string]string{"version": version}
		}
		vaultReply(w, http.StatusOK, map[string]any{"data": map[string]any{
			"path": mount, "type": "kv", "options": options, "description": "",
		}})
	case r.Method == http.MethodGet:
		if !d.valid(r.Header.Get("X-Vault-Token")) {
			vaultErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		if block != nil {
			<-block
		}
		d.mu.Lock()
		denied := d.deny[path]
		d.mu.Unlock()
		if denied {
			vaultErrors(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
			return
		}
		mount, version, ok := d.mountOf(path)
		if !ok {
			vaultErrors(w, http.StatusNotFound)
			return
		}
		secretPath := path
		if version == "2" {
			rest, isData := strings.CutPrefix(strings.TrimPrefix(path, mount), "data/")
			if !isData {
				vaultErrors(w, http.StatusNotFound)
				return
			}
			secretPath = mount + rest
		}
		d.mu.Lock()
		fields, ok := d.secrets[secretPath]
		d.mu.Unlock()
		if !ok {
			vaultErrors(w, http.StatusNotFound)
			return
		}
		if version == "2" {
			vaultReply(w, http.StatusOK, map[string]any{
				"request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0,
				"data": map[string]any{"data": fields, "metadata": map[string]any{
					"created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": false, "version": 1,
				}},
				"wrap_info": nil, "warnings": nil, "auth": nil,
			})
			return
		}
		vaultReply(w, http.StatusOK, map[string]any{
			"request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 2764800,
			"data": fields, "wrap_info": nil, "warnings": nil, "auth": nil,
		})
	default:
		vaultErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
}

// issue answers a successful login with a new token.
func (d *vaultDouble) issue(w http.ResponseWriter) {
	d.mu.Lock()
	d.nTokens++
	tok := fmt.Sprintf("hvs.token-%d", d.nTokens)
	d.tokens[tok] = d.clock.Now().Add(time.Duration(d.lease) * time.Second)
	d.issued[tok] = d.clock.Now()
	lease, renewable := d.lease, d.renewable
	d.mu.Unlock()
	vaultReply(w, http.StatusOK, map[string]any{
		"request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0, "data": nil,
		"auth": map[string]any{
			"client_token": tok, "accessor": "acc", "policies": []string{"default", "certops"},
			"token_policies": []string{"default", "certops"}, "metadata": map[string]string{},
			"lease_duration": lease, "renewable": renewable,
		},
	})
}

func (d *vaultDouble) valid(tok string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.validLocked(tok)
}

func (d *vaultDouble) validLocked(tok string) bool {
	exp, ok := d.tokens[tok]
	return ok && (exp.IsZero() || d.clock.Now().Before(exp))
}

func (d *vaultDouble) mountOf(path string) (mount, version string, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for m, v := range d.mounts {
		if strings.HasPrefix(path+"/", m) {
			return m, v, true
		}
	}
	return "", "", false
}
