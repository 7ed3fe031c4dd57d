package report

import (
	"encoding/json"
	"fmt"
	"io"

	"certops/schema"
)

// Invalid is a revision that does not validate, with its errors.
type Invalid struct {
	// Revision names the revision as the user gave it ("origin/main",
	// "working tree", a folder).
	Revision string
	Problems schema.ErrorList
}

// InvalidText writes the errors of each revision as
// "file:line:col: field: message" lines under a heading per revision.
func InvalidText(w io.Writer, revs []Invalid) error {
	for _, r := range revs {
		if _, err := fmt.Fprintf(w, "%s does not validate:\n", r.Revision); err != nil {
			return err
		}
		for _, p := range r.Problems {
			if _, err := fmt.Fprintf(w, "  %s\n", p.Error()); err != nil {
				return err
			}
		}
	}
	return nil
}

// invalidProblem is one error in the JSON document of InvalidJSON: the
// revision, then the problem's own JSON form (schema.Error).
type invalidProblem struct {
	Revision string `json:"revision"`
	*schema.Error
}

// InvalidJSON writes {"errors": [{"revision", "severity", "file", "line",
// "column", "field", "message"}]}: what `certops diff --format json`
// prints instead of a plan.
func InvalidJSON(w io.Writer, revs []Invalid) error {
	doc := struct {
		Errors []invalidProblem `json:"errors"`
	}{Errors: []invalidProblem{}}
	for _, r := range revs {
		for _, p := range r.Problems {
			doc.Errors = append(doc.Errors, invalidProblem{Revision: r.Revision, Error: p})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
