package main

import (
	"fmt"
	"io"
	"strings"

	"certops/certcheck"
)

// printFindings reports hygiene findings of a diff (a key reused across
// renewal): on stderr as lines, and for markdown also in the PR comment on
// stdout. It returns whether any is an error.
func printFindings(stdout, stderr io.Writer, format string, findings []certcheck.Finding) (failed bool, err error) {
	if len(findings) == 0 {
		return false, nil
	}
	var md strings.Builder
	md.WriteString("\n#### Certificate hygiene\n\n")
	for _, f := range findings {
		failed = failed || f.Severity == certcheck.SeverityError
		if _, err := fmt.Fprintf(stderr, "%s: %s: %s: %s [%s]\n", f.Severity, f.Entity, f.Field, f.Message, f.Check); err != nil {
			return failed, err
		}
		fmt.Fprintf(&md, "- **%s** `%s` %s: %s (`%s`)\n", f.Severity, f.Entity, f.Field, f.Message, f.Check)
	}
	if format == "markdown" {
		_, err = io.WriteString(stdout, md.String())
	}
	return failed, err
}
