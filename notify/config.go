package notify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Provider types, as --notify URLs and --notify-config name them.
const (
	TypeWebhook      = "webhook"
	TypeSlack        = "slack"
	TypeTeams        = "teams"
	TypeAlertmanager = "alertmanager"
)

// ParseURL reads one --notify URL into a target. The provider is chosen by,
// in this order:
//
//  1. a scheme prefix: slack+https://..., teams+https://...,
//     alertmanager+http://..., webhook+https://... (the prefix is removed);
//  2. a provider= query parameter (removed before sending);
//  3. the host: hooks.slack.com is Slack; *.logic.azure.com,
//     *.powerplatform.com and *.webhook.office.com are Teams; a path ending
//     in /api/v2/alerts is Alertmanager;
//  4. otherwise the generic JSON webhook.
//
// Two more query parameters are removed before sending: events=a,b filters
// the events the target receives, and secret_file=PATH names the file
// whose content (trimmed) signs the generic webhook's body. A URL's path
// and query may be credentials: errors name its scheme and host only.
func ParseURL(raw string) (Target, error) {
	kind := ""
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if p, base, ok := strings.Cut(scheme, "+"); ok {
			kind, raw = p, base+"://"+rest
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("notify url: %w", redactURLError(err))
	}
	q := u.Query()
	if p := q.Get("provider"); p != "" {
		if kind != "" && kind != p {
			return Target{}, fmt.Errorf("notify url %s: scheme says %s, provider= says %s", endpoint(raw), kind, p)
		}
		kind = p
	}
	c := providerConfig{Type: kind, URL: raw, SecretFile: q.Get("secret_file")}
	if ev := q.Get("events"); ev != "" {
		c.Events = strings.Split(ev, ",")
	}
	for _, k := range []string{"provider", "events", "secret_file"} {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	c.URL = u.String()
	if c.Type == "" {
		c.Type = guessType(u)
	}
	t, err := c.target()
	if err != nil {
		return Target{}, fmt.Errorf("notify url %s: %w", endpoint(c.URL), err)
	}
	return t, nil
}

func guessType(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	switch {
	case host == "hooks.slack.com":
		return TypeSlack
	case strings.HasSuffix(host, ".logic.azure.com"), strings.HasSuffix(host, ".powerplatform.com"), strings.HasSuffix(host, ".webhook.office.com"):
		return TypeTeams
	case strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v2/alerts"):
		return TypeAlertmanager
	}
	return TypeWebhook
}

// Config is a --notify-config file:
//
//	providers:
//	  - type: slack                  # webhook | slack | teams | alertmanager
//	    url_file: /etc/certops/slack.url   # or url: (a webhook URL is a credential: prefer a file)
//	    events: [stalled, failed, expiring]  # default: every event
//	  - type: webhook
//	    url: https://hooks.example.com/certops
//	    secret_file: /etc/certops/hook.secret  # HMAC-SHA256 key for X-Signature-256
//	  - type: alertmanager
//	    url: http://alertmanager:9093
//	  - type: slack
//	    url_file: /etc/certops/mattermost.url
//	    channel: tls                 # Slack-compatible services that honour it
//	    username: certops
type Config struct {
	Providers []providerConfig `yaml:"providers"`
}

type providerConfig struct {
	Type       string   `yaml:"type"`
	URL        string   `yaml:"url"`
	URLFile    string   `yaml:"url_file"`
	SecretFile string   `yaml:"secret_file"`
	Events     []string `yaml:"events"`
	Channel    string   `yaml:"channel"`
	Username   string   `yaml:"username"`
	Generator  string   `yaml:"generator_url"`
}

// LoadConfig reads a --notify-config file. Errors name the file, the line
// and the field; unknown fields are refused.
func LoadConfig(path string) ([]Target, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("notify config: %w", err)
	}
	// Unknown fields are refused with yaml's line numbers; the node tree
	// gives each provider's line for our own checks.
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	items := providerNodes(&root)
	var targets []Target
	var errs []error
	for i, pc := range c.Providers {
		line := 0
		if i < len(items) {
			line = items[i].Line
		}
		t, err := pc.target()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: providers[%d]: %w", path, line, i, err))
			continue
		}
		targets = append(targets, t)
	}
	if len(c.Providers) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no providers", path))
	}
	return targets, errors.Join(errs...)
}

// providerNodes returns the nodes of the providers list, for their lines.
func providerNodes(root *yaml.Node) []*yaml.Node {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "providers" && doc.Content[i+1].Kind == yaml.SequenceNode {
			return doc.Content[i+1].Content
		}
	}
	return nil
}

// target builds the provider a configuration names.
func (c providerConfig) target() (Target, error) {
	var t Target
	for _, e := range c.Events {
		ev, err := ParseEvent(strings.TrimSpace(e))
		if err != nil {
			return t, fmt.Errorf("events: %w", err)
		}
		t.Events = append(t.Events, ev)
	}
	u := c.URL
	switch {
	case u != "" && c.URLFile != "":
		return t, errors.New("url and url_file: give one")
	case c.URLFile != "":
		b, err := os.ReadFile(c.URLFile)
		if err != nil {
			return t, fmt.Errorf("url_file: %w", err)
		}
		u = strings.TrimSpace(string(b))
	case u == "":
		return t, errors.New("url: required (or url_file)")
	}
	if err := checkURL(u); err != nil {
		return t, err
	}
	if c.SecretFile != "" && c.Type != TypeWebhook {
		return t, fmt.Errorf("secret_file: only the %s provider signs its body", TypeWebhook)
	}
	switch c.Type {
	case TypeWebhook:
		w := &Webhook{URL: u}
		if c.SecretFile != "" {
			b, err := os.ReadFile(c.SecretFile)
			if err != nil {
				return t, fmt.Errorf("secret_file: %w", err)
			}
			if w.Secret = bytes.TrimSpace(b); len(w.Secret) == 0 {
				return t, fmt.Errorf("secret_file %s: empty", c.SecretFile)
			}
		}
		t.Provider = w
	case TypeSlack:
		t.Provider = &Slack{URL: u, Channel: c.Channel, Username: c.Username}
	case TypeTeams:
		t.Provider = &Teams{URL: u}
	case TypeAlertmanager:
		t.Provider = &Alertmanager{URL: u, GeneratorURL: c.Generator}
	case "":
		return t, errors.New("type: required (webhook, slack, teams or alertmanager)")
	default:
		return t, fmt.Errorf("type %q: want webhook, slack, teams or alertmanager", c.Type)
	}
	return t, nil
}
