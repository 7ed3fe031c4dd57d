package report

import (
	"encoding/json"
	"io"

	"certops/plan"
)

// JSON writes the plan as `certops diff --format json` prints it: the
// plan's own JSON form (changes and summary), indented.
func JSON(w io.Writer, p *plan.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
