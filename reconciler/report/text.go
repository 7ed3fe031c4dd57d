package report

import (
	"io"
	"strings"

	"certops/plan"
)

// ANSI SGR sequences of the text renderers.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
)

// Text writes the plan as [plan.Plan.String] does: "+ create",
// "~ update" field by field, "- delete" and a "Summary:" line. With color,
// creations are green, updates yellow, deletions red and the summary bold;
// the caller decides (a terminal, and NO_COLOR unset).
func Text(w io.Writer, p *plan.Plan, color bool) error {
	s := p.String()
	if !color {
		_, err := io.WriteString(w, s)
		return err
	}
	var b strings.Builder
	var current string // colour of the change whose field lines follow
	for line := range strings.Lines(s) {
		body := strings.TrimRight(line, "\n")
		var c string
		switch {
		case strings.HasPrefix(body, "+ "):
			c, current = ansiGreen, ansiGreen
		case strings.HasPrefix(body, "~ "):
			c, current = ansiYellow, ansiYellow
		case strings.HasPrefix(body, "- "):
			c, current = ansiRed, ansiRed
		case strings.HasPrefix(body, "Summary:"):
			c = ansiBold
		case strings.HasPrefix(body, " "):
			c = current
		}
		if c == "" {
			b.WriteString(line)
			continue
		}
		b.WriteString(c + body + ansiReset + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
