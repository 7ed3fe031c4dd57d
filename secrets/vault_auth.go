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
)

// vaultTokenState is the client's current token. mu is held while a token
// is obtained, so concurrent reads that find the token expired wait for one
// login instead of each logging in.
type vaultTokenState struct {
	mu        sync.Mutex
	token     string    // guarded by mu; "" = none yet
	renewAt   time.Time // guarded by mu; renew (or log in again) from then on; zero = never
	expires   time.Time // guarded by mu; the token is dead from then on; zero = never
	renewable bool      // guarded by mu
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

// authedJSON sends an authenticated request. A 403 with a token obtained by
// login (AppRole, Kubernetes, token file) may mean the token was revoked or
// expired early: the client logs in once more and retries once.
func (v *vaultClient) authedJSON(ctx context.Context, method, apiPath string, in, out any) error {
	token, err := v.token(ctx)
	if err != nil {
		return err
	}
	err = v.do(ctx, method, apiPath, token, in, out)
	var ve *VaultError
	if v.cfg.auth != authToken && errors.As(err, &ve) && ve.Status == http.StatusForbidden {
		v.dropToken(token)
		if token, err = v.token(ctx); err != nil {
			return err
		}
		err = v.do(ctx, method, apiPath, token, in, out)
	}
	return err
}

// token returns a usable token: the current one while it is fresh; past
// two thirds of its lease it is renewed (renew-self) if renewable, and
// otherwise, or if renewal fails, replaced by a new login. A VAULT_TOKEN's
// "login" looks its TTL up, so that it is renewed in time too.
func (v *vaultClient) token(ctx context.Context) (string, error) {
	t := &v.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	now := v.now()
	if t.token != "" && (t.renewAt.IsZero() || now.Before(t.renewAt)) {
		return t.token, nil
	}
	if t.token != "" && t.renewable && (t.expires.IsZero() || now.Before(t.expires)) {
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
	a, err := v.login(ctx)
	if err != nil {
		t.token = ""
		return "", err
	}
	v.setToken(a, now)
	v.log.Debug("vault login", "auth", v.cfg.auth, "lease", time.Duration(a.Auth.LeaseDuration)*time.Second)
	return t.token, nil
}

// setToken records a login or renewal answer received at now. Callers hold
// v.tok.mu.
func (v *vaultClient) setToken(a vaultAuth, now time.Time) {
	t := &v.tok
	t.token, t.renewable = a.Auth.ClientToken, a.Auth.Renewable
	t.renewAt, t.expires = time.Time{}, time.Time{}
	if lease := time.Duration(a.Auth.LeaseDuration) * time.Second; lease > 0 {
		t.expires = now.Add(lease)
		t.renewAt = now.Add(lease * 2 / 3)
		if lease < 10*time.Second {
			// Not worth renewing: use it while it lasts, then log in.
			t.renewable = false
		}
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
		// Read the file again after a minute: cheap, and a rewritten
		// token is picked up before the old one's TTL runs out.
		return vaultAuth{Auth: &vaultAuthBlock{ClientToken: tok, LeaseDuration: 60}}, nil
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
		v.log.Debug("vault token lookup refused; using VAULT_TOKEN without renewal", "err", err)
		return vaultAuth{Auth: &vaultAuthBlock{ClientToken: v.cfg.token}}, nil
	}
	if err != nil {
		return vaultAuth{}, fmt.Errorf("token lookup: %w", err)
	}
	return vaultAuth{Auth: &vaultAuthBlock{ClientToken: v.cfg.token, LeaseDuration: body.Data.TTL, Renewable: body.Data.Renewable}}, nil
}
