package report

import (
	"fmt"
	"strings"

	"certops/plan"
)

// MaxMarkdown is the size limit of a Markdown report: GitHub refuses
// comments over 65,536 characters, so reports stay under 65,000 with room
// for the note that says what was cut.
const MaxMarkdown = 65000

// MarkdownOptions describe what a Markdown report compares.
type MarkdownOptions struct {
	// Base and Head name the two sides ("origin/main", "working tree",
	// "daemon http://..."); shown in the heading when set.
	Base, Head string
	// Limit is the size limit in bytes; 0 means MaxMarkdown.
	Limit int
}

// Markdown renders the plan as a pull-request comment: a heading, the
// summary, a table with one row per changed entity, and the field-by-field
// changes of each entity in a collapsible <details> block. When the report
// would exceed the limit, rows and details are cut at an entity boundary
// and a note says how many changes are not shown. All repository text
// (names, files, values) is escaped, so a crafted name cannot inject
// Markdown or HTML into the comment.
func Markdown(p *plan.Plan, opts MarkdownOptions) string {
	limit := opts.Limit
	if limit <= 0 {
		limit = MaxMarkdown
	}
	var head strings.Builder
	head.WriteString("### certops plan")
	if opts.Base != "" || opts.Head != "" {
		fmt.Fprintf(&head, ": %s → %s", code(opts.Base), code(opts.Head))
	}
	head.WriteString("\n\n")
	fmt.Fprintf(&head, "**Summary:** %s.\n\n", p.Summary)
	if len(p.Changes) == 0 {
		head.WriteString("No changes: the gateway would serve the same certificates.\n")
		return head.String()
	}

	// Reserve room for the note, then add whole rows and whole details
	// blocks while they fit.
	const noteRoom = 300
	budget := limit - head.Len() - noteRoom
	tableHead := "| | Entity | File | Changed fields |\n|---|---|---|---|\n"
	var table strings.Builder
	table.WriteString(tableHead)
	rows := 0
	for _, c := range p.Changes {
		row := fmt.Sprintf("| %s | %s | %s | %s |\n", actionCell(c.Action), code(c.Name), code(c.File), escape(fieldNames(c)))
		if table.Len()+len(row) > budget {
			break
		}
		table.WriteString(row)
		rows++
	}
	budget -= table.Len()
	var details strings.Builder
	shown := 0
	for _, c := range p.Changes[:rows] {
		if len(c.Fields) == 0 {
			shown++
			continue
		}
		block := detailsBlock(c)
		if details.Len()+len(block) > budget {
			break
		}
		details.WriteString(block)
		shown++
	}

	var b strings.Builder
	b.WriteString(head.String())
	b.WriteString(table.String())
	b.WriteString("\n")
	b.WriteString(details.String())
	if cut := len(p.Changes) - shown; cut > 0 {
		fmt.Fprintf(&b, "\n> [!NOTE]\n> This comment is limited to %d characters: %d of %d changes are not shown in full (%d have no row). "+
			"Run `certops diff` locally for the whole plan.\n", limit, cut, len(p.Changes), len(p.Changes)-rows)
	}
	return b.String()
}

func actionCell(a plan.Action) string {
	switch a {
	case plan.ActionCreate:
		return "`+` create"
	case plan.ActionUpdate:
		return "`~` update"
	case plan.ActionDelete:
		return "`-` delete"
	}
	return escape(string(a))
}

func fieldNames(c plan.Change) string {
	if c.Action == plan.ActionDelete {
		return "(all)"
	}
	names := make([]string, len(c.Fields))
	for i, f := range c.Fields {
		names[i] = f.Field
	}
	return strings.Join(names, ", ")
}

func detailsBlock(c plan.Change) string {
	var b strings.Builder
	sign := map[plan.Action]string{plan.ActionCreate: "+", plan.ActionUpdate: "~", plan.ActionDelete: "-"}[c.Action]
	fmt.Fprintf(&b, "<details><summary><code>%s %s %s</code>", sign, html(string(c.Action)), html(c.Name))
	if c.File != "" {
		fmt.Fprintf(&b, " (%s)", html(c.File))
	}
	b.WriteString("</summary>\n\n| Field | Old | New |\n|---|---|---|\n")
	for _, f := range c.Fields {
		var oldCell, newCell []string
		if f.Old != "" {
			oldCell = append(oldCell, escape(f.Old))
		}
		if f.New != "" {
			newCell = append(newCell, escape(f.New))
		}
		for _, r := range f.Removed {
			oldCell = append(oldCell, "− "+escape(r))
		}
		for _, a := range f.Added {
			newCell = append(newCell, "+ "+escape(a))
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", escape(f.Field), strings.Join(oldCell, "<br>"), strings.Join(newCell, "<br>"))
	}
	b.WriteString("\n</details>\n\n")
	return b.String()
}

// escape makes s safe inside a Markdown table cell: no HTML, no cell
// breaks, no line breaks, no emphasis or links.
func escape(s string) string {
	s = html(s)
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

// code renders s as inline code; backticks inside are replaced, since a
// code span cannot escape them.
func code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.NewReplacer("`", "'", "|", `\|`, "\n", " ", "\r", " ").Replace(s)
	return "`" + s + "`"
}

func html(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "`", "&#96;", "|", "&#124;").Replace(s)
}

// MarkdownInvalid renders validation errors as a pull-request comment, in
// place of a plan, under the same size limit as [Markdown].
func MarkdownInvalid(revs []Invalid) string {
	var b strings.Builder
	b.WriteString("### certops plan: invalid revision\n\nNo plan: the following revision(s) do not validate.\n\n")
	omitted := 0
	for _, r := range revs {
		header := fmt.Sprintf("**%s**\n\n", escape(r.Revision))
		if b.Len()+len(header) > MaxMarkdown-300 {
			omitted += len(r.Problems)
			continue
		}
		b.WriteString(header)
		for _, p := range r.Problems {
			line := "- " + escape(p.Error()) + "\n"
			if b.Len()+len(line) > MaxMarkdown-300 {
				omitted++
				continue
			}
			b.WriteString(line)
		}
		b.WriteString("\n")
	}
	if omitted > 0 {
		fmt.Fprintf(&b, "> [!NOTE]\n> %d more problems are not shown; run `certops validate` for all of them.\n", omitted)
	}
	return b.String()
}
