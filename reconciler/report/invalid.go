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

// invalidProblem is one error in the JSON document of InvalidJSON.
type invalidProblem struct {
	Revision string `json:"revision"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

// InvalidJSON writes {"errors": [{"revision", "file", "line", "column",
// "field", "message"}]}: what `certops diff --format json` prints instead
// of a plan.
func InvalidJSON(w io.Writer, revs []Invalid) error {
	doc := struct {
		Errors []invalidProblem `json:"errors"`
	}{Errors: []invalidProblem{}}
	for _, r := range revs {
		for _, p := range r.Problems {
			doc.Errors = append(doc.Errors, invalidProblem{r.Revision, p.Pos.File, p.Pos.Line, p.Pos.Col, p.Field, p.Msg})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
