package reconciler

import (
	"testing"

	"certops/schema"
)

func TestClassifyBelowRoot(t *testing.T) {
	tests := []struct {
		root, path string
		want       fileKind
	}{
		{"", "a.yaml", kindEntity},
		{"", "dir/policy.cue", kindPolicy},
		{"", ".github/x.yaml", kindIgnored},
		{"prod", "prod/a.yml", kindEntity},
		{"prod", "staging/a.yaml", kindIgnored},
		{"prod", "production/a.yaml", kindIgnored},
		{"prod", "prod/.hidden/a.yaml", kindIgnored},
		{"prod", "README.md", kindIgnored},
	}
	for _, tt := range tests {
		for _, root := range []string{tt.root, "./" + tt.root, tt.root + "/"} {
			l := newLoader(root, schema.Options{})
			if got := classify(l.root, tt.path); got != tt.want {
				t.Errorf("classify(%q, %q) = %v, want %v", root, tt.path, got, tt.want)
			}
		}
	}
}
