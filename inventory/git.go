package inventory

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// LastCommits returns, for every file below dir in the Git working copy
// that holds it, the commit that last changed it, by path relative to dir.
// It runs `git log` once (the git CLI: go-git is the source package's, and
// one walk of the history beats one command per file). A dir outside any
// working copy returns an empty map and no error.
func LastCommits(ctx context.Context, dir string) (map[string]string, error) {
	inside, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--is-inside-work-tree").Output()
	if err != nil || strings.TrimSpace(string(inside)) != "true" {
		return map[string]string{}, nil
	}
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "-c", "core.quotePath=false", "log", "--relative", "--no-renames", "--format=%x00%H", "--name-only", "--", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && strings.Contains(stderr.String(), "does not have any commits") {
			return map[string]string{}, nil
		}
		return nil, fmt.Errorf("git log in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	commits := map[string]string{}
	var commit string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "\x00"):
			commit = line[1:]
		case line == "" || commit == "":
		default:
			if _, seen := commits[line]; !seen {
				commits[line] = commit
			}
		}
	}
	return commits, sc.Err()
}
