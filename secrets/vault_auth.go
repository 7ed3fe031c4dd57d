package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"certops/internal/backoff"
)

// Token timing.
const (
	// vaultTokenFileReread is how often a token file is read again
	// (DESIGN.md 2.4: every minute).
	vaultTokenFileReread = time.Minute
	// vaultMinLease is the shortest lease worth renewing.
	vaultMinLease = 10 * time.Second
	// vaultValidFor is how long a lookup-self that found the token valid
	// is trusted: a path refused (403) within it is a policy answer.
	vaultValidFor = time.Minute
)

// vaultRelogin spaces the logins that 403s provoke (issue 17.3): a token
// that the server no longer accepts is replaced at most once per step.
var vaultRelogin = backoff.Policy{Min: 5 * time.Second, Max: 5 * time.Minute}

// vaultTokenState is the client's current token. mu is held while a token
// is obtained, so concurrent reads that find the token expired wait for one
// login instead of each logging in.
type vaultTokenState struct {
	mu        sync.Mutex
	token     string    // guarded by mu; "" = none yet
	renewAt   time.Time // guarded by mu; renew (or log in again) from then on; zero = never
	expires   time.Time // guarded by mu; the token is dead from then on; zero = never
	renewable bool      // guarded by mu
	warned    string    // guarded by mu; the token whose expiry was warned about
	validAt   time.Time // guarded by mu; when lookup-self last found token valid

	forced     int       // guarded by mu; logins in a row forced by 403s
	lastForced time.Time // guarded by mu

	loginErr      error     // guarded by mu; the last login's failure, until one succeeds
	loginFailures int       // guarded by mu; failed logins in a row
	loginAt       time.Time // guarded by mu; when the last login failed

	wake chan struct{} // capacity 1: tells renewLoop that the schedule changed
}

// vaultAuth is a login or renew-self answer.
type vaultAuth struct {
	Auth *vaultAuthBlock `json:"auth"`
}

// vaultAuthBlock is the auth block of a login or renew-self answer.
type vaultAuthBlock struct {
	ClientToken   string `json:"client_token"`
	LeaseDuration int64  `json:"lease_duration"` // seconds; 0 = does not expire
	Renewable     bool   `json:"renewable"`
}

// ownsTokens reports whether the client's tokens are its own logins, which
// it may revoke; a VAULT_TOKEN or a token file belongs to someone else.
func (v *vaultClient) ownsTokens() bool {
	return v.cfg.auth == authAppRole || v.cfg.auth == authKubernetes
}

// authedJSON sends an authenticated request. A 403 means either that the
// token is no longer valid or that the policy refuses this path: only the
// first (lookup-self fails too) leads to a new login, at most once per
// vaultRelogin step, and the request is retried once.
func (v *vaultClient) authedJSON(ctx context.Context, method, apiPath string, in, out any) error {
	token, err := v.token(ctx)
	if err != nil {
		return err
	}
	err = v.do(ctx, method, apiPath, token, in, out)
	var ve *VaultError
	if !errors.As(err, &ve) || ve.Status != http.StatusForbidden {
		if err == nil {
			v.loginsSettled()
		}
		return err
	}
	if v.cfg.auth == authToken || v.tokenValid(ctx, token) {
		return err // the policy's answer: logging in again would change nothing
	}
	if !v.mayForceLogin() {
		return fmt.Errorf("%w (the token is no longer valid; next login attempt after backoff)", err)
	}
	v.dropToken(token)
	if token, err = v.token(ctx); err != nil {
		return err
	}
	if err = v.do(ctx, method, apiPath, token, in, out); err == nil {
		v.loginsSettled()
	}
	return err
}

// tokenValid asks Vault whether token is still valid (lookup-self). Only a
// 403 says no; a network failure says nothing, so the token is kept.
func (v *vaultClient) tokenValid(ctx context.Context, token string) bool {
	t := &v.tok
	t.mu.Lock()
	if t.token == token && !t.validAt.IsZero() && v.now().Sub(t.validAt) < vaultValidFor {
		t.mu.Unlock()
		return true
	}
	t.mu.Unlock()
	err := v.do(ctx, http.MethodGet, "auth/token/lookup-self", token, nil, nil)
	var ve *VaultError
	if errors.As(err, &ve) && ve.Status == http.StatusForbidden {
		return false
	}
	t.mu.Lock()
	if t.token == token {
		t.validAt = v.now()
	}
	t.mu.Unlock()
	return true
}

// mayForceLogin reports whether a 403 may replace the token now, and
// counts the attempt.
func (v *vaultClient) mayForceLogin() bool {
	t := &v.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	now := v.now()
	if t.forced > 0 && now.Sub(t.lastForced) < vaultRelogin.Delay(t.forced) {
		return false
	}
	t.forced++
	t.lastForced = now
	return true
}

// loginsSettled resets the forced-login backoff after a successful read.
func (v *vaultClient) loginsSettled() {
	t := &v.tok
	t.mu.Lock()
	t.forced = 0
	t.mu.Unlock()
}

// token returns a usable token: the current one while it is fresh; past
// two thirds of its lease it is renewed (renew-self) if renewable, and
// otherwise, or if renewal fails, replaced by a new login. A VAULT_TOKEN's
// "login" looks its TTL up, so that it is renewed in time too. A login
// token that is replaced while still valid is revoked.
func (v *vaultClient) token(ctx context.Context) (string, error) {
	t := &v.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	now := v.now()
	if t.token != "" && (t.renewAt.IsZero() || now.Before(t.renewAt)) {
		return t.token, nil
	}
	alive := t.token != "" && (t.expires.IsZero() || now.Before(t.expires))
	if alive && t.renewable {
		var a vaultAuth
		err := v.do(ctx, http.MethodPost, "auth/token/renew-self", t.token, struct{}{}, &a)
		if err == nil && a.Auth != nil && a.Auth.ClientToken != "" {
			v.setToken(a, now)
			// A token at its max TTL renews for less than asked; once the
			// renewed lease is too short to be worth it, setToken has put
			// renewAt in the past and the next call logs in.
			v.log.Debug("vault token renewed", "auth", v.cfg.auth, "lease", time.Duration(a.Auth.LeaseDuration)*time.Second)
			return t.token, nil
		}
		v.log.Debug("vault token renewal failed; logging in again", "auth", v.cfg.auth, "err", err)
	}
	old := ""
	if alive && v.ownsTokens() {
		old = t.token
	}
	if t.loginErr != nil && now.Sub(t.loginAt) < vaultRelogin.Delay(t.loginFailures) {
		// Failed logins back off too: every fetch must not log in.
		return "", t.loginErr
	}
	a, err := v.login(ctx)
	if err != nil {
		t.token = ""
		t.loginErr, t.loginAt = err, now
		t.loginFailures++
		return "", err
	}
	t.loginErr, t.loginFailures = nil, 0
	v.setToken(a, now)
	v.log.Debug("vault login", "auth", v.cfg.auth, "lease", time.Duration(a.Auth.LeaseDuration)*time.Second)
	if old != "" && old != t.token {
		v.revoke(ctx, old)
	}
	return t.token, nil
}

// revoke revokes a token certops no longer uses (auth/token/revoke-self),
// so that replaced logins do not pile up in Vault until their TTL.
func (v *vaultClient) revoke(ctx context.Context, token string) {
	if err := v.do(ctx, http.MethodPost, "auth/token/revoke-self", token, struct{}{}, nil); err != nil {
		v.log.Debug("vault token revocation failed; it expires with its TTL", "auth", v.cfg.auth, "err", err)
	}
}

// setToken records a login or renewal answer received at now and wakes the
// renewal loop. Callers hold v.tok.mu.
func (v *vaultClient) setToken(a vaultAuth, now time.Time) {
	t := &v.tok
	if t.token != a.Auth.ClientToken {
		t.validAt = time.Time{}
	}
	t.token, t.renewable = a.Auth.ClientToken, a.Auth.Renewable
	t.renewAt, t.expires = time.Time{}, time.Time{}
	switch lease := time.Duration(a.Auth.LeaseDuration) * time.Second; {
	case v.cfg.auth == authTokenFile:
		// The file's owner (Vault Agent) renews the token; read the file
		// again every minute, so a rewritten token is picked up before the
		// old one's TTL runs out.
		t.renewAt, t.renewable = now.Add(vaultTokenFileReread), false
	case lease > 0:
		t.expires = now.Add(lease)
		t.renewAt = now.Add(lease * 2 / 3)
		if lease < vaultMinLease {
			// Not worth renewing: use it while it lasts, then log in.
			t.renewable = false
		}
	}
	if v.cfg.auth == authToken && !t.renewable && !t.expires.IsZero() && t.warned != t.token {
		// Nothing can replace a VAULT_TOKEN: say when it stops working.
		t.warned = t.token
		v.log.Warn("VAULT_TOKEN cannot be renewed; secret refreshes fail once it expires: give certops a renewable token or a login method (AppRole, Kubernetes)",
			"expires", t.expires.UTC().Format(time.RFC3339))
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// dropToken forgets token if it is still the current one, so the next call
// logs in again.
func (v *vaultClient) dropToken(token string) {
	v.tok.mu.Lock()
	defer v.tok.mu.Unlock()
	if v.tok.token == token {
		v.tok.token = ""
	}
}

// renewLoop renews the token on its own schedule, at two thirds of its
// lease (re-reads a token file every minute), whether or not secrets are
// being fetched (issue 17.2). A failure is retried with backoff until the
// token expires; then the next fetch logs in.
func (v *vaultClient) renewLoop(ctx context.Context) {
	policy := backoff.Policy{Min: time.Second, Max: time.Minute, Jitter: 0.1}
	failures := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		v.tok.mu.Lock()
		has, at := v.tok.token != "", v.tok.renewAt
		v.tok.mu.Unlock()
		var due <-chan time.Time
		if has && !at.IsZero() {
			wait := at.Sub(v.now())
			if failures > 0 {
				wait = policy.Delay(failures)
			}
			timer.Reset(max(wait, 0))
			due = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-v.tok.wake:
			timer.Stop()
			continue
		case <-due:
		}
		if _, err := v.token(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			v.tok.mu.Lock()
			expires := v.tok.expires
			v.tok.mu.Unlock()
			v.log.Warn("vault token renewal failed; retrying", "auth", v.cfg.auth, "err", err, "failures", failures,
				"expires", expires.UTC().Format(time.RFC3339))
			continue
		}
		failures = 0
	}
}

// login obtains a new token with the configured method.
func (v *vaultClient) login(ctx context.Context) (vaultAuth, error) {
	switch v.cfg.auth {
	case authToken:
		return v.lookupSelf(ctx)
	case authTokenFile:
		// The file is maintained by someone else (Vault Agent's sink, the
		// CLI's token helper): read it again on every login.
		b, err := os.ReadFile(v.cfg.tokenFile)
		if err != nil {
			return vaultAuth{}, fmt.Errorf("vault: read token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return vaultAuth{}, fmt.Errorf("vault: token file %s is empty", v.cfg.tokenFile)
		}
		return vaultAuth{Auth: &vaultAuthBlock{ClientToken: tok}}, nil
	case authAppRole:
		body := map[string]string{"role_id": v.cfg.roleID}
		if v.cfg.secretID != "" {
			body["secret_id"] = v.cfg.secretID
		}
		return v.loginAt(ctx, "auth/"+v.cfg.authMount+"/login", body)
	case authKubernetes:
		jwt, err := os.ReadFile(v.cfg.k8sJWT)
		if err != nil {
			return vaultAuth{}, fmt.Errorf("vault: read Kubernetes service-account token: %w", err)
		}
		return v.loginAt(ctx, "auth/"+v.cfg.authMount+"/login", map[string]string{
			"role": v.cfg.k8sRole,
			"jwt":  strings.TrimSpace(string(jwt)),
		})
	}
	return vaultAuth{}, fmt.Errorf("vault: auth method %s has no login", v.cfg.auth)
}

func (v *vaultClient) loginAt(ctx context.Context, apiPath string, body map[string]string) (vaultAuth, error) {
	var a vaultAuth
	if err := v.do(ctx, http.MethodPost, apiPath, "", body, &a); err != nil {
		return vaultAuth{}, fmt.Errorf("%s login: %w", v.cfg.auth, err)
	}
	if a.Auth == nil || a.Auth.ClientToken == "" {
		return vaultAuth{}, fmt.Errorf("vault: %s login: answer has no auth.client_token", v.cfg.auth)
	}
	return a, nil
}

// lookupSelf learns the TTL of VAULT_TOKEN (auth/token/lookup-self) so that
// a renewable token is renewed before it expires. A policy that does not
// allow the lookup (403) leaves the token in use without renewal, as the
// Vault CLI would use it.
func (v *vaultClient) lookupSelf(ctx context.Context) (vaultAuth, error) {
	var body struct {
		Data struct {
			TTL       int64 `json:"ttl"`
			Renewable bool  `json:"renewable"`
		} `json:"data"`
	}
	err := v.do(ctx, http.MethodGet, "auth/token/lookup-self", v.cfg.token, nil, &body)
	var ve *VaultError
	if errors.As(err, &ve) && ve.Status == http.StatusForbidden {
		v.log.Warn("VAULT_TOKEN lookup refused (the token is invalid or its policy lacks auth/token/lookup-self); using it without renewal", "err", err)
		return vaultAuth{Auth: &vaultAuthBlock{ClientToken: v.cfg.token}}, nil
	}
	if err != nil {
		return vaultAuth{}, fmt.Errorf("vault token lookup: %w", err)
	}
	return vaultAuth{Auth: &vaultAuthBlock{ClientToken: v.cfg.token, LeaseDuration: body.Data.TTL, Renewable: body.Data.Renewable}}, nil
}
