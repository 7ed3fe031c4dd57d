package commitstatus

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// State is a commit status state, in GitHub's words; GitLab's "failed" is
// StateFailure.
type State string

const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
	StateError   State = "error"
)

func (s State) String() string { return string(s) }

// Status is one commit status.
type Status struct {
	// SHA is the full commit id.
	SHA   string
	State State
	// Description is one line: the plan summary, the first problem, or
	// the fleet's convergence. Posters cut it to what the host accepts.
	Description string
	// TargetURL, optional, links to details (the daemon's status page).
	TargetURL string
}

// Poster posts a commit status to a Git host.
type Poster interface {
	Post(ctx context.Context, st Status) error
	// String names the host and repository, without credentials.
	String() string
}

// Context returns the status' context (GitHub) or name (GitLab) for a
// daemon called name: "certops/<name>", or "certops" for "".
func Context(name string) string {
	if name == "" {
		return "certops"
	}
	return "certops/" + name
}

// Convergence is a fleet's status description: "applied on 198/200
// nodes".
func Convergence(applied, total int) string {
	return fmt.Sprintf("applied on %d/%d nodes", applied, total)
}

// newClient returns the retrying client both posters use: 3 retries on
// connection errors, 429 and 5xx, honouring Retry-After (GitHub's
// secondary rate limit answers 403 with Retry-After too, and
// DefaultRetryPolicy does not retry a 403: that limit is the Reporter's
// job to avoid).
func newClient(hc *http.Client) *retryablehttp.Client {
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return &retryablehttp.Client{
		HTTPClient:   hc,
		RetryMax:     3,
		RetryWaitMin: time.Second,
		RetryWaitMax: 30 * time.Second,
		CheckRetry:   retryablehttp.DefaultRetryPolicy,
		Backoff:      retryablehttp.DefaultBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// do sends req and turns a non-2xx answer into an error quoting the
// host's message (which names no token).
func do(c *retryablehttp.Client, req *http.Request) error {
	rreq, err := retryablehttp.FromRequest(req)
	if err != nil {
		return err
	}
	resp, err := c.Do(rreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// cut shortens s to at most n runes, marking the cut with an ellipsis.
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
