package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// MaxWebhookBody is the largest webhook body accepted; larger bodies are
// answered 413 without being read to the end. GitHub caps its payloads at
// 25 MB, but a push event for certificate files is a few KB.
const MaxWebhookBody = 1 << 20

// Webhook providers, the provider label of certops_webhook_requests_total.
const (
	ProviderGitHub  = "github"
	ProviderGitLab  = "gitlab"
	ProviderGeneric = "generic"
)

// Webhook results, the result label of certops_webhook_requests_total.
const (
	webhookTriggered    = "triggered"    // a push to the followed ref: reconcile started
	webhookIgnored      = "ignored"      // a push to another ref, or another event
	webhookPing         = "ping"         // GitHub's ping event
	webhookUnauthorized = "unauthorized" // missing or bad signature or token
	webhookTooLarge     = "too_large"    // body over MaxWebhookBody
	webhookBadRequest   = "bad_request"  // unreadable payload
)

// push is what certops needs from a push webhook: which ref moved.
type push struct {
	// Event is the provider's event name ("push", "Push Hook", ...).
	Event string
	// Ref is the ref that moved as the payload names it: a full ref
	// ("refs/heads/main") from GitHub and GitLab, a full ref or a short
	// name from generic senders; "" when the payload does not say (generic
	// hooks), which counts as a match.
	Ref string
	// DefaultBranch is the repository's default branch when the payload
	// names it (GitHub repository.default_branch, GitLab
	// project.default_branch): what a daemon without --ref follows.
	DefaultBranch string
	// Ping is GitHub's set-up check; it triggers nothing.
	Ping bool
	// Deleted marks a push that deleted Ref (GitHub "deleted": true;
	// GitLab sends an "after" of forty zeros): nothing to fetch.
	Deleted bool
	// Ignore, when non-empty, says why the event is not a push at all.
	Ignore string
}

// parsePush reads the event of a webhook request whose signature has been
// checked. event is the provider's event header (X-GitHub-Event,
// X-Gitlab-Event; ignored for generic hooks).
func parsePush(provider, event string, body []byte) (push, error) {
	p := push{Event: event}
	switch provider {
	case ProviderGitHub:
		switch event {
		case "ping":
			p.Ping = true
			return p, nil
		case "push":
		case "":
			return p, errors.New("missing X-GitHub-Event header")
		default:
			p.Ignore = fmt.Sprintf("event %q is not a push", event)
			return p, nil
		}
	case ProviderGitLab:
		switch event {
		case "Push Hook", "Tag Push Hook":
		case "":
			return p, errors.New("missing X-Gitlab-Event header")
		default:
			p.Ignore = fmt.Sprintf("event %q is not a push", event)
			return p, nil
		}
	case ProviderGeneric:
		// Any body is a push; a JSON object may name the ref that moved.
		trimmed := strings.TrimSpace(string(body))
		if trimmed == "" || trimmed[0] != '{' {
			return p, nil
		}
	default:
		return p, fmt.Errorf("unknown webhook provider %q", provider)
	}
	var payload struct {
		Ref        *string `json:"ref"`
		Deleted    bool    `json:"deleted"`
		After      string  `json:"after"`
		Repository struct {
			DefaultBranch string `json:"default_branch"`
		} `json:"repository"`
		Project struct {
			DefaultBranch string `json:"default_branch"`
		} `json:"project"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		return p, fmt.Errorf("%s %s payload: %w", provider, eventName(event), err)
	}
	if payload.Ref == nil {
		if provider == ProviderGeneric {
			return p, nil
		}
		return p, fmt.Errorf("%s %s payload: no ref", provider, eventName(event))
	}
	if *payload.Ref == "" {
		return p, fmt.Errorf("%s %s payload: empty ref", provider, eventName(event))
	}
	p.Ref = *payload.Ref
	p.Deleted = payload.Deleted || provider == ProviderGitLab && payload.After == zeroCommit
	p.DefaultBranch = payload.Repository.DefaultBranch
	if provider == ProviderGitLab {
		p.DefaultBranch = payload.Project.DefaultBranch
	}
	return p, nil
}

// zeroCommit is the "after" of a GitLab push that deleted its ref.
const zeroCommit = "0000000000000000000000000000000000000000"

// githubPayload returns the JSON of a GitHub delivery: the body itself for
// application/json, the "payload" field for
// application/x-www-form-urlencoded (GitHub's default).
func githubPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("github form payload: %w", err)
	}
	return []byte(form.Get("payload")), nil
}

func eventName(event string) string {
	if event == "" {
		return "push"
	}
	return event
}

// refMatches reports whether a push to pushed (a ref, or "" when unknown)
// concerns the followed ref, which is written as --ref takes it: a branch
// or tag name, a full ref, or "" for the source's default branch, which the
// payload may name (defaultBranch); when it does not, every push counts.
// Both sides are compared as Git refs (sameRef): a generic sender's
// "master" is the branch or tag master, as GitHub's "refs/heads/master".
func refMatches(followed, pushed, defaultBranch string) bool {
	if pushed == "" {
		return true
	}
	if followed == "" {
		if defaultBranch == "" {
			return true
		}
		followed = defaultBranch
	}
	return sameRef(followed, pushed)
}

// sameRef reports whether two refs, each a full ref ("refs/heads/main")
// or a short name that stands for the branch or the tag of that name, can
// name the same ref.
func sameRef(a, b string) bool {
	for _, x := range fullRefs(a) {
		for _, y := range fullRefs(b) {
			if x == y {
				return true
			}
		}
	}
	return false
}

func fullRefs(r string) []string {
	if strings.HasPrefix(r, "refs/") {
		return []string{r}
	}
	return []string{"refs/heads/" + r, "refs/tags/" + r}
}

// verifyHMAC reports whether sig, written "sha256=<hex>" (GitHub's form)
// or as bare hex, is the HMAC-SHA256 of body under secret. The comparison
// takes constant time.
func verifyHMAC(secret, body []byte, sig string) bool {
	sig = strings.TrimPrefix(strings.TrimSpace(sig), "sha256=")
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// wellFormedHMAC reports whether sig has the form verifyHMAC accepts,
// without checking it.
func wellFormedHMAC(sig string) bool {
	sig = strings.TrimPrefix(strings.TrimSpace(sig), "sha256=")
	_, err := hex.DecodeString(sig)
	return err == nil && len(sig) == 2*sha256.Size
}

// verifyToken reports whether token equals secret, in constant time.
func verifyToken(secret []byte, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), secret) == 1
}

// webhookReply is the JSON answer of every webhook endpoint.
type webhookReply struct {
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// webhook returns the handler of POST /hooks/{provider}.
func (s *Server) webhook(provider string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.opts.WebhookSecret) == 0 {
			// Without a secret the endpoints do not exist (DESIGN.md 5).
			http.NotFound(w, r)
			return
		}
		reply := func(code int, result, reason string) {
			s.metrics.webhookRequest(provider, result)
			writeJSON(w, code, webhookReply{Result: result, Reason: reason})
		}
		// What can be checked without the body is checked first, so that
		// an unauthenticated client cannot make the server read one:
		// GitLab's token is a header, and an HMAC header must at least be
		// well formed.
		var authHeader string
		switch provider {
		case ProviderGitHub:
			authHeader = "X-Hub-Signature-256"
		case ProviderGitLab:
			authHeader = "X-Gitlab-Token"
		case ProviderGeneric:
			authHeader = "X-Signature-256"
		}
		if provider == ProviderGitLab && !verifyToken(s.opts.WebhookSecret, r.Header.Get(authHeader)) ||
			provider != ProviderGitLab && !wellFormedHMAC(r.Header.Get(authHeader)) {
			s.log.Warn("webhook refused: bad or missing signature", "provider", provider, "remote_addr", r.RemoteAddr)
			reply(http.StatusUnauthorized, webhookUnauthorized, "bad or missing signature")
			return
		}
		if r.ContentLength > MaxWebhookBody {
			s.log.Warn("webhook refused: body too large", "provider", provider, "remote_addr", r.RemoteAddr, "bytes", r.ContentLength)
			reply(http.StatusRequestEntityTooLarge, webhookTooLarge, fmt.Sprintf("body over %d bytes", MaxWebhookBody))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				s.log.Warn("webhook refused: body too large", "provider", provider, "remote_addr", r.RemoteAddr)
				reply(http.StatusRequestEntityTooLarge, webhookTooLarge, fmt.Sprintf("body over %d bytes", MaxWebhookBody))
				return
			}
			reply(http.StatusBadRequest, webhookBadRequest, "reading body failed")
			return
		}

		var ok bool
		var event string
		switch provider {
		case ProviderGitHub:
			ok = verifyHMAC(s.opts.WebhookSecret, body, r.Header.Get("X-Hub-Signature-256"))
			event = r.Header.Get("X-GitHub-Event")
		case ProviderGitLab:
			ok = verifyToken(s.opts.WebhookSecret, r.Header.Get("X-Gitlab-Token"))
			event = r.Header.Get("X-Gitlab-Event")
		case ProviderGeneric:
			ok = verifyHMAC(s.opts.WebhookSecret, body, r.Header.Get("X-Signature-256"))
		}
		if !ok {
			s.log.Warn("webhook refused: bad or missing signature", "provider", provider, "remote_addr", r.RemoteAddr)
			reply(http.StatusUnauthorized, webhookUnauthorized, "bad or missing signature")
			return
		}

		if provider == ProviderGitHub {
			// GitHub's default content type sends the JSON as the form
			// field "payload"; the signature covers the raw body, checked
			// above.
			if body, err = githubPayload(r.Header.Get("Content-Type"), body); err != nil {
				reply(http.StatusBadRequest, webhookBadRequest, err.Error())
				return
			}
		}
		p, err := parsePush(provider, event, body)
		switch {
		case err != nil:
			s.log.Warn("webhook refused: bad payload", "provider", provider, "remote_addr", r.RemoteAddr, "err", err)
			reply(http.StatusBadRequest, webhookBadRequest, err.Error())
		case p.Ping:
			reply(http.StatusOK, webhookPing, "")
		case p.Ignore != "":
			s.log.Debug("webhook ignored", "provider", provider, "reason", p.Ignore)
			reply(http.StatusOK, webhookIgnored, p.Ignore)
		case p.Deleted:
			reason := fmt.Sprintf("push deleted %s; nothing to fetch", p.Ref)
			s.log.Debug("webhook ignored", "provider", provider, "reason", reason)
			reply(http.StatusOK, webhookIgnored, reason)
		case !refMatches(s.opts.Ref, p.Ref, p.DefaultBranch):
			followed := s.opts.Ref
			if followed == "" {
				followed = "the default branch " + p.DefaultBranch
			}
			reason := fmt.Sprintf("push to %s; following %s", p.Ref, followed)
			s.log.Debug("webhook ignored", "provider", provider, "reason", reason)
			reply(http.StatusOK, webhookIgnored, reason)
		default:
			s.rec.Trigger()
			s.log.Info("webhook: reconcile triggered", "provider", provider, "ref", p.Ref, "remote_addr", r.RemoteAddr)
			reply(http.StatusAccepted, webhookTriggered, "")
		}
	})
}
