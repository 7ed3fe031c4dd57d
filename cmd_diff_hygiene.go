package main

import (
	"fmt"
	"io"
	"io/fs"
	"strings"

	"certops/certcheck"
	"certops/schema"
)

// printFindings reports hygiene findings of a diff (a key reused across
// renewal): on stderr as lines led by the entity's file (fileOf, by
// entity name) as validate's are, and for markdown also in the PR comment
// on stdout. It returns whether any is an error.
func printFindings(stdout, stderr io.Writer, format string, findings []certcheck.Finding, fileOf map[string]string) (failed bool, err error) {
	if len(findings) == 0 {
		return false, nil
	}
	var md strings.Builder
	md.WriteString("\n#### Certificate hygiene\n\n")
	for _, f := range findings {
		failed = failed || f.Severity == certcheck.SeverityError
		file := schema.Printable(fileOf[f.Entity])
		if _, err := fmt.Fprintf(stderr, "%s: %s: %s: %s: %s [%s]\n", file, f.Entity, f.Field, f.Severity, f.Message, f.Check); err != nil {
			return failed, err
		}
		fmt.Fprintf(&md, "- **%s** `%s` (`%s`) %s: %s (`%s`)\n", f.Severity, f.Entity, file, f.Field, f.Message, f.Check)
	}
	if format == "markdown" {
		_, err = io.WriteString(stdout, md.String())
	}
	return failed, err
}

// checkHead validates the head of a diff again with the hygiene checks on
// (DescribeTree runs without them), so a pull request that brings a weak
// key or a broken chain is refused like an invalid one. It returns the
// hygiene problems and a checker tuned by the head's #Checks, for the
// findings across revisions.
func checkHead(fsys fs.FS, path string, roots []string) (schema.ErrorList, *certcheck.Checker, error) {
	private, err := certcheck.ReadRootFiles(roots)
	if err != nil {
		return nil, nil, err
	}
	res, err := schema.Load(fsys, schema.Options{Root: path, Hygiene: &schema.Hygiene{Roots: private}})
	if err != nil {
		return nil, nil, err
	}
	// The tree validated without the checks, so its errors now are
	// theirs; their warnings are validate's to show.
	var problems schema.ErrorList
	for _, p := range res.Problems {
		if p.Severity == schema.SeverityError {
			problems = append(problems, p)
		}
	}
	return problems, certcheck.New(certcheck.Options{Policy: res.Checks}), nil
}
