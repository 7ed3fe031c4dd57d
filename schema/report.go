package schema

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Format is an output format of a validation report.
type Format string

// Report formats (`certops validate --format`).
const (
	FormatText   Format = "text"
	FormatJSON   Format = "json"
	FormatGitHub Format = "github" // GitHub Actions workflow commands
)

// String returns the format's name.
func (f Format) String() string { return string(f) }

// ParseFormat returns the Format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSON, FormatGitHub:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want text, json or github)", s)
}

// ReportOptions tune WriteReport.
type ReportOptions struct {
	// Color adds ANSI colours to the text format; the caller decides
	// (a terminal, and NO_COLOR unset).
	Color bool
	// Verbose lists the ignored files.
	Verbose bool
	// Strict counts warnings as failures, as `validate --strict` does.
	Strict bool
	// Dir, when not empty, is put in front of every file path, so that
	// paths are relative to the working directory (GitHub annotations need
	// repository-relative paths).
	Dir string
}

// Failed reports whether res fails validation: it has an error, or, with
// strict, a warning.
func (res *Result) Failed(strict bool) bool {
	for _, e := range res.Problems {
		if e.Severity == SeverityError || strict {
			return true
		}
	}
	return false
}

// WriteReport writes the problems of res to w in format f. The report
// holds positions, field paths and messages, which never contain values.
func WriteReport(w io.Writer, res *Result, f Format, opts ReportOptions) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, res, opts)
	case FormatGitHub:
		return writeGitHub(w, res, opts)
	case FormatText, "":
		return writeText(w, res, opts)
	}
	return fmt.Errorf("unknown format %q", f)
}

func (o ReportOptions) file(p string) string {
	if o.Dir == "" || o.Dir == "." || p == "" {
		return p
	}
	return strings.TrimSuffix(o.Dir, "/") + "/" + p
}

// entityCount is the number of entity documents a report counts: every one
// read, whether it passed the schema or not.
func (res *Result) entityCount() int { return max(res.Documents, len(res.Entities)) }

func counts(res *Result) (errs, warns int) {
	for _, e := range res.Problems {
		if e.Severity == SeverityWarning {
			warns++
		} else {
			errs++
		}
	}
	return errs, warns
}

const (
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

func writeText(w io.Writer, res *Result, opts ReportOptions) error {
	paint := func(color, s string) string {
		if !opts.Color {
			return s
		}
		return color + s + ansiReset
	}
	var b strings.Builder
	if opts.Verbose {
		for _, p := range res.Ignored {
			fmt.Fprintf(&b, "ignored: %s\n", Printable(opts.file(p)))
		}
		for _, e := range res.Entities {
			if e.Disabled {
				pos := e.Pos
				pos.File = opts.file(pos.File)
				fmt.Fprintf(&b, "disabled: %s: entity %s (status: 0) is validated but not served\n", pos, e.Name)
			}
		}
	}
	for _, e := range res.Problems {
		pos := e.Pos
		pos.File = opts.file(pos.File)
		b.WriteString(paint(ansiBold, pos.String()) + ": ")
		if e.Field != "" {
			b.WriteString(e.Field + ": ")
		}
		if e.Severity == SeverityWarning {
			b.WriteString(paint(ansiYellow, "warning: "))
		} else {
			b.WriteString(paint(ansiRed, "error: "))
		}
		b.WriteString(e.Msg + "\n")
	}
	writeSummary(&b, res, opts)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSummary writes the last line of a text report.
func writeSummary(b *strings.Builder, res *Result, opts ReportOptions) {
	nerr, nwarn := counts(res)
	summary := fmt.Sprintf("%s in %s: %s, %s", plural(res.entityCount(), "entity", "entities"),
		plural(res.Files, "file", "files"), plural(nerr, "error", "errors"), plural(nwarn, "warning", "warnings"))
	verdict, color := "valid: ", ansiGreen
	if res.Failed(opts.Strict) {
		verdict, color = "invalid: ", ansiRed
	}
	if opts.Color {
		verdict = color + verdict + ansiReset
	}
	b.WriteString(verdict + summary + "\n")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// jsonReport is the JSON form of a report; each problem is an Error in its
// own JSON form.
type jsonReport struct {
	Valid    bool     `json:"valid"`
	Entities int      `json:"entities"`
	Files    int      `json:"files"`
	Errors   int      `json:"errors"`
	Warnings int      `json:"warnings"`
	Problems []Error  `json:"problems"`
	Ignored  []string `json:"ignored,omitempty"`
}

func writeJSON(w io.Writer, res *Result, opts ReportOptions) error {
	nerr, nwarn := counts(res)
	r := jsonReport{Valid: !res.Failed(opts.Strict), Entities: res.entityCount(), Files: res.Files,
		Errors: nerr, Warnings: nwarn, Problems: make([]Error, 0, len(res.Problems))}
	for _, e := range res.Problems {
		p := *e
		p.File = opts.file(p.File)
		r.Problems = append(r.Problems, p)
	}
	if opts.Verbose {
		for _, p := range res.Ignored {
			r.Ignored = append(r.Ignored, opts.file(p))
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeGitHub writes GitHub Actions workflow commands: one ::error or
// ::warning annotation per problem, then the text summary.
// https://docs.github.com/actions/reference/workflow-commands-for-github-actions
func writeGitHub(w io.Writer, res *Result, opts ReportOptions) error {
	var b strings.Builder
	for _, e := range res.Problems {
		cmd := "error"
		if e.Severity == SeverityWarning {
			cmd = "warning"
		}
		props := []string{"file=" + ghProperty(opts.file(e.Pos.File))}
		if e.Pos.Line > 0 {
			props = append(props, "line="+strconv.Itoa(e.Pos.Line))
			if e.Pos.Col > 0 {
				props = append(props, "col="+strconv.Itoa(e.Pos.Col))
			}
		}
		msg := e.Msg
		if e.Field != "" {
			msg = e.Field + ": " + msg
		}
		fmt.Fprintf(&b, "::%s %s::%s\n", cmd, strings.Join(props, ","), ghData(msg))
	}
	if opts.Verbose {
		for _, p := range res.Ignored {
			fmt.Fprintf(&b, "ignored: %s\n", Printable(opts.file(p)))
		}
	}
	writeSummary(&b, res, ReportOptions{Strict: opts.Strict})
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData escapes an annotation's message (workflow command data).
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes an annotation property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
