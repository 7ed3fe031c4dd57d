package commitstatus_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"certops/commitstatus"
)

// The GitHub and GitLab APIs cannot run here: these local servers follow
// their documented REST paths, headers and payloads
// (docs.github.com/en/rest/commits/statuses, docs.gitlab.com/api/commits).

type call struct {
	method, path string
	header       http.Header
	body         map[string]string
}

func apiServer(tb testing.TB, status int) (*httptest.Server, <-chan call) {
	tb.Helper()
	ch := make(chan call, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]string
		json.Unmarshal(raw, &body)
		ch <- call{r.Method, r.URL.EscapedPath(), r.Header.Clone(), body}
		w.WriteHeader(status)
		io.WriteString(w, `{"message":"Validation Failed"}`)
	}))
	tb.Cleanup(srv.Close)
	return srv, ch
}

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestGitHubPost(t *testing.T) {
	srv, ch := apiServer(t, http.StatusCreated)
	g := commitstatus.NewGitHub(srv.URL, "acme", "tls", "ghp_TOKEN", commitstatus.Context("edge"), srv.Client())
	long := strings.Repeat("x", 300)
	if err := g.Post(t.Context(), commitstatus.Status{SHA: sha, State: commitstatus.StateFailure, Description: long, TargetURL: "https://status.example.com"}); err != nil {
		t.Fatalf("Post = %v", err)
	}
	c := <-ch
	if c.method != http.MethodPost || c.path != "/repos/acme/tls/statuses/"+sha {
		t.Errorf("request %s %s, want POST /repos/acme/tls/statuses/%s", c.method, c.path, sha)
	}
	if c.header.Get("Authorization") != "Bearer ghp_TOKEN" || c.header.Get("Accept") != "application/vnd.github+json" || c.header.Get("X-GitHub-Api-Version") == "" {
		t.Errorf("headers = %v", c.header)
	}
	if c.body["state"] != "failure" || c.body["context"] != "certops/edge" || c.body["target_url"] != "https://status.example.com" || len([]rune(c.body["description"])) != 140 {
		t.Errorf("body = %v, want state failure, context certops/edge and a 140-character description", c.body)
	}
}

func TestGitLabPost(t *testing.T) {
	srv, ch := apiServer(t, http.StatusCreated)
	g := commitstatus.NewGitLab(srv.URL+"/api/v4", "group/sub/tls", "glpat-TOKEN", commitstatus.Context("edge"), srv.Client())
	for _, tt := range []struct {
		state commitstatus.State
		want  string
	}{{commitstatus.StateSuccess, "success"}, {commitstatus.StateFailure, "failed"}, {commitstatus.StatePending, "pending"}} {
		if err := g.Post(t.Context(), commitstatus.Status{SHA: sha, State: tt.state, Description: "1 to create, 0 to update, 0 to delete"}); err != nil {
			t.Fatalf("Post = %v", err)
		}
		c := <-ch
		if c.method != http.MethodPost || c.path != "/api/v4/projects/group%2Fsub%2Ftls/statuses/"+sha {
			t.Errorf("request %s %s, want POST /api/v4/projects/group%%2Fsub%%2Ftls/statuses/%s", c.method, c.path, sha)
		}
		if c.header.Get("PRIVATE-TOKEN") != "glpat-TOKEN" || c.body["state"] != tt.want || c.body["name"] != "certops/edge" {
			t.Errorf("state %s: header %v body %v, want state %s", tt.state, c.header, c.body, tt.want)
		}
	}
}

func TestPostErrorsNameNoToken(t *testing.T) {
	srv, _ := apiServer(t, http.StatusUnprocessableEntity)
	for _, p := range []commitstatus.Poster{
		commitstatus.NewGitHub(srv.URL, "acme", "tls", "ghp_TOKEN", "certops", srv.Client()),
		commitstatus.NewGitLab(srv.URL, "7", "glpat-TOKEN", "certops", srv.Client()),
	} {
		err := p.Post(t.Context(), commitstatus.Status{SHA: sha, State: commitstatus.StateSuccess})
		if err == nil || !strings.Contains(err.Error(), "422") || strings.Contains(err.Error(), "TOKEN") {
			t.Errorf("%s: Post = %v, want a 422 error without the token", p, err)
		}
	}
}

func TestRepoFromURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/acme/tls.git", "acme/tls"},
		{"https://token@gitlab.example.com/group/sub/tls", "group/sub/tls"},
		{"ssh://git@github.com/acme/tls.git", "acme/tls"},
		{"git@github.com:acme/tls.git", "acme/tls"},
		{"/srv/git/tls", ""},
	}
	for _, tt := range tests {
		got, err := commitstatus.RepoFromURL(tt.in)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("RepoFromURL(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}
