package commitstatus

import (
	"fmt"
	"net/url"
	"strings"
)

// RepoFromURL returns the repository path of a Git URL as the host's API
// names it: "owner/repo" (GitHub) or "group/sub/project" (GitLab), from
// https://host/owner/repo(.git), ssh://git@host/owner/repo.git or
// git@host:owner/repo.git.
func RepoFromURL(raw string) (string, error) {
	path := ""
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		path = u.Path
	} else if at, rest, ok := strings.Cut(raw, "@"); ok && !strings.Contains(at, "/") {
		// scp-like: git@host:owner/repo.git
		if _, p, ok := strings.Cut(rest, ":"); ok {
			path = p
		}
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if strings.Count(path, "/") < 1 {
		return "", fmt.Errorf("commit status: cannot tell the repository from the source URL; pass --commit-status-repo")
	}
	return path, nil
}
