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

// GitLabAPI is the REST API root of gitlab.com.
const GitLabAPI = "https://gitlab.com/api/v4"

// GitLab posts statuses with POST /projects/:id/statuses/:sha
// (https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit).
// The token (a project or personal access token with the api scope) goes
// in the PRIVATE-TOKEN header.
type GitLab struct {
	// API is the REST root: GitLabAPI, or https://HOST/api/v4.
	API string
	// Project is the numeric id or the full path ("group/sub/project").
	Project string
	Token   string
	Name    string // see [Context]
	client  *retryablehttp.Client
}

// NewGitLab returns a GitLab poster; hc nil is a default client.
func NewGitLab(api, project, token, name string, hc *http.Client) *GitLab {
	if api == "" {
		api = GitLabAPI
	}
	return &GitLab{API: strings.TrimSuffix(api, "/"), Project: project, Token: token, Name: name, client: newClient(hc)}
}

func (g *GitLab) String() string { return "gitlab " + g.Project }

// gitlabDescriptionMax is GitLab's limit on a status description.
const gitlabDescriptionMax = 255

// gitlabStates maps our states to GitLab's (pending, running, success,
// failed, canceled, skipped).
var gitlabStates = map[State]string{StatePending: "pending", StateSuccess: "success", StateFailure: "failed", StateError: "failed"}

func (g *GitLab) Post(ctx context.Context, st Status) error {
	state, ok := gitlabStates[st.State]
	if !ok {
		return fmt.Errorf("gitlab status: state %q", st.State)
	}
	payload := map[string]string{
		"state":       state,
		"name":        g.Name,
		"description": cut(st.Description, gitlabDescriptionMax),
	}
	if st.TargetURL != "" {
		payload["target_url"] = st.TargetURL
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	// A project path is one URL-encoded segment ("group%2Fproject").
	u := fmt.Sprintf("%s/projects/%s/statuses/%s", g.API, url.PathEscape(g.Project), url.PathEscape(st.SHA))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("gitlab status: %w", err)
	}
	req.Header.Set("PRIVATE-TOKEN", g.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certops")
	if err := do(g.client, req); err != nil {
		return fmt.Errorf("gitlab status for %s@%.12s: %w", g.Project, st.SHA, err)
	}
	return nil
}
