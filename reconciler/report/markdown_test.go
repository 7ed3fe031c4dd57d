package report

import (
	"fmt"
	"strings"
	"testing"

	"certops/plan"
	"certops/schema"
)

func TestMarkdownLimit(t *testing.T) {
	tests := []struct {
		name     string
		changes  int
		wantCut  bool
		wantRows int // -1: don't check
	}{
		{"small", 3, false, 3},
		{"large", 5000, true, -1},
		{"huge", 20000, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &plan.Plan{}
			for i := range tt.changes {
				p.Changes = append(p.Changes, plan.Change{
					Action: plan.ActionUpdate, Name: fmt.Sprintf("entity-%06d", i), File: fmt.Sprintf("certs/e%06d.yaml", i),
					Fields: []plan.FieldChange{
						{Field: "cert", Old: "serial 1, not after 2027-01-01T00:00:00Z, sha256 0123456789abcdef", New: "serial 2, not after 2028-01-01T00:00:00Z, sha256 fedcba9876543210"},
						{Field: "snis", Added: []string{"a.example.com"}, Removed: []string{"b.example.com"}},
					},
				})
			}
			p.Summary.Update = tt.changes
			md := Markdown(p, MarkdownOptions{Base: "origin/main", Head: "working tree"})
			if len(md) >= MaxMarkdown {
				t.Errorf("Markdown of %d changes is %d bytes, want < %d", tt.changes, len(md), MaxMarkdown)
			}
			cut := strings.Contains(md, "> [!NOTE]")
			if cut != tt.wantCut {
				t.Errorf("Markdown of %d changes: note present = %v, want %v", tt.changes, cut, tt.wantCut)
			}
			if !strings.Contains(md, fmt.Sprintf("**Summary:** 0 to create, %d to update", tt.changes)) {
				t.Errorf("Markdown lacks the full summary")
			}
			if tt.wantRows >= 0 {
				if got := strings.Count(md, "| `~` update |"); got != tt.wantRows {
					t.Errorf("Markdown has %d rows, want %d", got, tt.wantRows)
				}
			}
			if strings.Count(md, "<details>") != strings.Count(md, "</details>") {
				t.Errorf("Markdown cut inside a <details> block")
			}
		})
	}
}

func TestMarkdownEscapes(t *testing.T) {
	p := &plan.Plan{
		Changes: []plan.Change{{
			Action: plan.ActionUpdate, Name: "evil", File: "a|b`c.yaml",
			Fields: []plan.FieldChange{{Field: "labels", Added: []string{"x=<script>alert(1)</script>|*y*"}}},
		}},
		Summary: plan.Summary{Update: 1},
	}
	md := Markdown(p, MarkdownOptions{})
	for _, bad := range []string{"<script>", "a|b", "`c.yaml", "|*y*"} {
		if strings.Contains(md, bad) {
			t.Errorf("Markdown holds unescaped %q:\n%s", bad, md)
		}
	}
	if !strings.Contains(md, "&lt;script&gt;") {
		t.Errorf("Markdown lost the escaped value:\n%s", md)
	}
}

func TestMarkdownNoChanges(t *testing.T) {
	md := Markdown(&plan.Plan{Summary: plan.Summary{Unchanged: 4}}, MarkdownOptions{Base: "a", Head: "b"})
	want := "### certops plan: `a` → `b`\n\n**Summary:** 0 to create, 0 to update, 0 to delete, 4 unchanged.\n\nNo changes: the gateway would serve the same certificates.\n"
	if md != want {
		t.Errorf("Markdown(no changes) = %q, want %q", md, want)
	}
}

func TestMarkdownInvalidLimit(t *testing.T) {
	var problems schema.ErrorList
	for i := range 5000 {
		problems = append(problems, &schema.Error{Pos: schema.Pos{File: fmt.Sprintf("certs/e%d.yaml", i), Line: 3, Col: 7}, Field: "cert", Msg: "no PEM certificate found"})
	}
	md := MarkdownInvalid([]Invalid{{Revision: "HEAD", Problems: problems}})
	if len(md) >= MaxMarkdown || !strings.Contains(md, "more problems are not shown") {
		t.Errorf("MarkdownInvalid of 5000 problems: %d bytes, note %v", len(md), strings.Contains(md, "not shown"))
	}
}

func TestTextColor(t *testing.T) {
	p := &plan.Plan{
		Changes: []plan.Change{
			{Action: plan.ActionCreate, Name: "a", Fields: []plan.FieldChange{{Field: "snis", Added: []string{"a.test"}}}},
			{Action: plan.ActionUpdate, Name: "b", Fields: []plan.FieldChange{{Field: "labels", Added: []string{"x=1"}}}},
			{Action: plan.ActionDelete, Name: "c"},
		},
		Summary: plan.Summary{Create: 1, Update: 1, Delete: 1},
	}
	var plain, colored strings.Builder
	if err := Text(&plain, p, false); err != nil {
		t.Fatal(err)
	}
	if plain.String() != p.String() {
		t.Errorf("Text(color=false) = %q, want Plan.String() %q", plain.String(), p.String())
	}
	Text(&colored, p, true)
	for _, want := range []string{ansiGreen + "+ create a", ansiGreen + "    snis: + a.test", ansiYellow + "~ update b", ansiRed + "- delete c", ansiBold + "Summary:"} {
		if !strings.Contains(colored.String(), want) {
			t.Errorf("Text(color=true) lacks %q:\n%q", want, colored.String())
		}
	}
	stripped := strings.NewReplacer(ansiReset, "", ansiGreen, "", ansiYellow, "", ansiRed, "", ansiBold, "").Replace(colored.String())
	if stripped != p.String() {
		t.Errorf("Text(color=true) without colours = %q, want %q", stripped, p.String())
	}
}
