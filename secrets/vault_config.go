package secrets

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
)

// Vault's defaults, as its CLI has them.
const (
	vaultDefaultAddr = "https://127.0.0.1:8200"
	// vaultDefaultTimeout bounds one attempt of one request. The Vault CLI
	// waits 60s; a daemon that must notice a hung server within seconds
	// waits less (issue 17.1): a round reports a hung server within two
	// attempt timeouts (a fetch that started before the store was found
	// down runs out its own). VAULT_CLIENT_TIMEOUT overrides it.
	vaultDefaultTimeout   = 4 * time.Second
	vaultDefaultK8sJWT    = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	vaultDefaultAppRole   = "approle"
	vaultDefaultK8sMount  = "kubernetes"
	vaultTokenHelperFile  = ".vault-token"
	vaultMaxResponseBytes = 4 << 20
)

// vaultAuthMethod says how the client obtains its token.
type vaultAuthMethod string

const (
	authToken      vaultAuthMethod = "token"      // VAULT_TOKEN
	authTokenFile  vaultAuthMethod = "token_file" // VAULT_TOKEN_FILE or ~/.vault-token, read on each login
	authAppRole    vaultAuthMethod = "approle"    // VAULT_ROLE_ID, VAULT_SECRET_ID
	authKubernetes vaultAuthMethod = "kubernetes" // VAULT_K8S_ROLE and the service-account token
)

func (m vaultAuthMethod) String() string { return string(m) }

// vaultConfig is the Vault configuration read from the environment.
type vaultConfig struct {
	addr      string // without a trailing slash
	namespace string // VAULT_NAMESPACE, sent as X-Vault-Namespace
	prefix    string // a secret manager's path prefix; "" for the environment's server

	kvVersions  kvOverrides // VAULT_KV_VERSION; empty = detect per mount
	kvForcedAll bool        // VAULT_KV_VERSION without a mount

	auth      vaultAuthMethod
	token     string // authToken only
	tokenFile string // authTokenFile only
	roleID    string
	secretID  string
	k8sRole   string
	k8sJWT    string // path of the service-account token
	authMount string // mount of the approle or kubernetes auth method
}

// Format keeps the token and the AppRole secret id out of fmt output.
func (c vaultConfig) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{addr:%s namespace:%s auth:%s}", c.addr, c.namespace, c.auth)
}

// LogValue keeps them out of logs.
func (c vaultConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.addr), slog.String("namespace", c.namespace),
		slog.String("auth", c.auth.String()))
}

// vaultConfigFromEnv reads the configuration. The first of these that is
// set picks the auth method: VAULT_TOKEN, VAULT_TOKEN_FILE, VAULT_ROLE_ID
// (AppRole), VAULT_K8S_ROLE (Kubernetes), then the Vault CLI's token file
// ~/.vault-token if it exists.
func vaultConfigFromEnv(getenv func(string) (string, bool)) (vaultConfig, error) {
	get := func(k string) string { v, _ := getenv(k); return strings.TrimSpace(v) }
	cfg := vaultConfig{
		addr:      strings.TrimSuffix(get("VAULT_ADDR"), "/"),
		namespace: get("VAULT_NAMESPACE"),
	}
	if cfg.addr == "" {
		cfg.addr = vaultDefaultAddr
	}
	if !strings.HasPrefix(cfg.addr, "http://") && !strings.HasPrefix(cfg.addr, "https://") {
		return vaultConfig{}, fmt.Errorf("VAULT_ADDR %q: want an http:// or https:// URL", cfg.addr)
	}
	kv, err := parseKVOverrides(get("VAULT_KV_VERSION"))
	if err != nil {
		return vaultConfig{}, err
	}
	cfg.kvVersions, cfg.kvForcedAll = kv, kv.all != 0
	switch {
	case get("VAULT_TOKEN") != "":
		cfg.auth, cfg.token = authToken, get("VAULT_TOKEN")
	case get("VAULT_TOKEN_FILE") != "":
		cfg.auth, cfg.tokenFile = authTokenFile, get("VAULT_TOKEN_FILE")
	case get("VAULT_ROLE_ID") != "":
		cfg.auth, cfg.roleID, cfg.secretID = authAppRole, get("VAULT_ROLE_ID"), get("VAULT_SECRET_ID")
		cfg.authMount = trimSlashes(get("VAULT_APPROLE_MOUNT"))
		if cfg.authMount == "" {
			cfg.authMount = vaultDefaultAppRole
		}
	case get("VAULT_K8S_ROLE") != "":
		cfg.auth, cfg.k8sRole = authKubernetes, get("VAULT_K8S_ROLE")
		cfg.k8sJWT = get("VAULT_K8S_TOKEN_PATH")
		if cfg.k8sJWT == "" {
			cfg.k8sJWT = vaultDefaultK8sJWT
		}
		cfg.authMount = trimSlashes(get("VAULT_K8S_MOUNT"))
		if cfg.authMount == "" {
			cfg.authMount = vaultDefaultK8sMount
		}
	default:
		if home := get("HOME"); home != "" {
			f := filepath.Join(home, vaultTokenHelperFile)
			if _, err := os.Stat(f); err == nil {
				cfg.auth, cfg.tokenFile = authTokenFile, f
				break
			}
		}
		return vaultConfig{}, errors.New("no Vault credentials: set VAULT_TOKEN, VAULT_TOKEN_FILE, VAULT_ROLE_ID and VAULT_SECRET_ID, or VAULT_K8S_ROLE")
	}
	return cfg, nil
}

// kvOverrides are the KV versions that VAULT_KV_VERSION forces:
// "secret=2,legacy=1" per mount, or a bare "1" or "2" for every mount.
type kvOverrides struct {
	all    int            // 0 = none
	mounts map[string]int // "secret/" → version
}

func parseKVOverrides(s string) (kvOverrides, error) {
	var kv kvOverrides
	if s == "" {
		return kv, nil
	}
	if s == "1" || s == "2" {
		kv.all = int(s[0] - '0')
		return kv, nil
	}
	kv.mounts = make(map[string]int)
	for _, pair := range strings.Split(s, ",") {
		mount, version, ok := strings.Cut(strings.TrimSpace(pair), "=")
		mount = trimSlashes(strings.TrimSpace(mount))
		if !ok || mount == "" || (version != "1" && version != "2") {
			return kvOverrides{}, fmt.Errorf("VAULT_KV_VERSION %q: want MOUNT=VERSION pairs such as secret=2,legacy=1 (versions 1 or 2)", s)
		}
		kv.mounts[mount+"/"] = int(version[0] - '0')
	}
	return kv, nil
}

// lookup returns the forced version of a secret path's mount (the longest
// configured mount that is a prefix of it).
func (kv kvOverrides) lookup(secretPath string) (mount string, version int, ok bool) {
	if kv.all != 0 {
		m, _, _ := strings.Cut(secretPath, "/")
		return m + "/", kv.all, true
	}
	for m, v := range kv.mounts {
		if strings.HasPrefix(secretPath+"/", m) && len(m) > len(mount) {
			mount, version, ok = m, v, true
		}
	}
	return mount, version, ok
}

// vaultConfigFromManager reads an APISIX Vault secret object of the
// --secret-managers file: {id, uri, prefix, token[, namespace]}. Its
// values may be $env://NAME.
func vaultConfigFromManager(m Manager, getenv func(string) (string, bool)) (vaultConfig, error) {
	vals, err := m.values(getenv)
	if err != nil {
		return vaultConfig{}, err
	}
	cfg := vaultConfig{
		addr:      strings.TrimSuffix(vals["uri"], "/"),
		namespace: vals["namespace"],
		prefix:    trimSlashes(vals["prefix"]),
		auth:      authToken,
		token:     vals["token"],
	}
	if !strings.HasPrefix(cfg.addr, "http://") && !strings.HasPrefix(cfg.addr, "https://") {
		return vaultConfig{}, m.errorf("uri", "%q: want an http:// or https:// URL", cfg.addr)
	}
	if cfg.token == "" {
		return vaultConfig{}, m.errorf("token", "is empty")
	}
	return cfg, nil
}

// vaultManagerFields are the fields of a Vault secret manager; the first
// ones are required.
var vaultManagerFields = ManagerFields{Required: []string{"id", "uri", "prefix", "token"}, Optional: []string{"namespace"}}

// vaultHTTPClient builds the HTTP client from the Vault CLI's TLS variables.
func vaultHTTPClient(getenv func(string) (string, bool), log *slog.Logger) (*http.Client, error) {
	get := func(k string) string { v, _ := getenv(k); return strings.TrimSpace(v) }
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f := get("VAULT_CACERT"); f != "" {
		pemBytes, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("VAULT_CACERT: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("VAULT_CACERT %s: no PEM certificate found", f)
		}
		tlsCfg.RootCAs = pool
	} else if dir := get("VAULT_CAPATH"); dir != "" {
		pool, err := certPoolFromDir(dir)
		if err != nil {
			return nil, fmt.Errorf("VAULT_CAPATH: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	certFile, keyFile := get("VAULT_CLIENT_CERT"), get("VAULT_CLIENT_KEY")
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together")
	}
	if certFile != "" {
		// LoadX509KeyPair's errors describe PEM structure, not key bytes.
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("VAULT_CLIENT_CERT/VAULT_CLIENT_KEY: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{c}
	}
	tlsCfg.ServerName = get("VAULT_TLS_SERVER_NAME")
	if v := get("VAULT_SKIP_VERIFY"); v != "" {
		skip, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("VAULT_SKIP_VERIFY %q: want a boolean", v)
		}
		tlsCfg.InsecureSkipVerify = skip // the operator asked for it, as with the Vault CLI
		if skip {
			log.Warn("VAULT_SKIP_VERIFY is on: the Vault server's certificate is not verified, and anyone on the path can read the secrets")
		}
	}
	timeout, err := vaultTimeout(getenv)
	if err != nil {
		return nil, err
	}
	tr := cleanhttp.DefaultPooledTransport()
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// vaultTimeout is the per-attempt timeout: VAULT_CLIENT_TIMEOUT, else
// vaultDefaultTimeout.
func vaultTimeout(getenv func(string) (string, bool)) (time.Duration, error) {
	v, _ := getenv("VAULT_CLIENT_TIMEOUT")
	if v = strings.TrimSpace(v); v == "" {
		return vaultDefaultTimeout, nil
	}
	d, err := parseVaultDuration(v)
	if err != nil {
		return 0, fmt.Errorf("VAULT_CLIENT_TIMEOUT %q: %w", v, err)
	}
	return d, nil
}

func certPoolFromDir(dir string) (*x509.CertPool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	found := false
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if pool.AppendCertsFromPEM(b) {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: no PEM certificate found", dir)
	}
	return pool, nil
}

// parseVaultDuration reads a duration as Vault does: a Go duration, or a
// number of seconds.
func parseVaultDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration such as 30s or a number of seconds")
	}
	return d, nil
}

func trimSlashes(s string) string { return strings.Trim(s, "/") }
