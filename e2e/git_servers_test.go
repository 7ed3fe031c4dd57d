package e2e

import (
	"strings"
	"testing"
)

// TestGitServers proves the suite's git servers are real ones: the git
// command line clones the pushed commit from git daemon and from git
// http-backend.
func TestGitServers(t *testing.T) {
	requireBinary(t)
	repo := newGitRepo(t)
	writeFile(t, repo.work, "README", []byte("hello\n"))
	want := repo.commit(t, "first")
	daemonURL, _ := gitDaemon(t, repo.root, repo.name)
	httpURL, _ := gitHTTP(t, repo.root, repo.name)
	for _, url := range []string{daemonURL, httpURL} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			out := git(t, t.TempDir(), "ls-remote", url, "refs/heads/main")
			if got := strings.Fields(out); len(got) == 0 || got[0] != want {
				t.Errorf("git ls-remote %s = %q, want %s", url, out, want)
			}
			dir := t.TempDir()
			git(t, dir, "clone", "-q", url, "clone")
			if got := strings.TrimSpace(git(t, dir+"/clone", "rev-parse", "HEAD")); got != want {
				t.Errorf("clone of %s at %s, want %s", url, got, want)
			}
		})
	}
}
