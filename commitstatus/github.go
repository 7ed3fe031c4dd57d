package commitstatus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
)

// GitHubAPI is the REST API root of github.com.
const GitHubAPI = "https://api.github.com"

// GitHub posts statuses with POST /repos/{owner}/{repo}/statuses/{sha}
// (https://docs.github.com/en/rest/commits/statuses#create-a-commit-status).
// The token needs the "Commit statuses: write" permission (or the
// repo:status scope of a classic token).
type GitHub struct {
	// API is the REST root: GitHubAPI, or https://HOST/api/v3 for GitHub
	// Enterprise Server.
	API         string
	Owner, Repo string
	Token       string
	Context     string // see [Context]
	client      *retryablehttp.Client
}

// NewGitHub returns a GitHub poster; hc nil is a default client.
func NewGitHub(api, owner, repo, token, context string, hc *http.Client) *GitHub {
	if api == "" {
		api = GitHubAPI
	}
	return &GitHub{API: strings.TrimSuffix(api, "/"), Owner: owner, Repo: repo, Token: token, Context: context, client: newClient(hc)}
}

func (g *GitHub) String() string { return "github " + g.Owner + "/" + g.Repo }

// githubDescriptionMax is GitHub's limit on a status description.
const githubDescriptionMax = 140

func (g *GitHub) Post(ctx context.Context, st Status) error {
	state := st.State
	if state != StatePending && state != StateSuccess && state != StateFailure && state != StateError {
		return fmt.Errorf("github status: state %q", state)
	}
	body, err := json.Marshal(map[string]string{
		"state":       string(state),
		"description": cut(st.Description, githubDescriptionMax),
		"context":     g.Context,
		"target_url":  st.TargetURL,
	})
	if err != nil {
		return err
	}
	u := fmt.Sprintf("%s/repos/%s/%s/statuses/%s", g.API, url.PathEscape(g.Owner), url.PathEscape(g.Repo), url.PathEscape(st.SHA))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("github status: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Authorization", "Bearer "+g.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certops")
	if err := do(g.client, req); err != nil {
		return fmt.Errorf("github status for %s/%s@%.12s: %w", g.Owner, g.Repo, st.SHA, err)
	}
	return nil
}
