package schema_test

import "testing"

// TestEntityPositionsAfterValidation: a validated entity keeps where each
// field is written (in compact form), the nearest written parent of a
// field that is not, and the document for the rest.
func TestEntityPositionsAfterValidation(t *testing.T) {
	e := loadOne(t, "# moved by a comment\n"+refEntity)
	tests := []struct {
		field     string
		line, col int
	}{
		{"name", 2, 7},
		{"snis", 3, 7},
		{"snis[1]", 3, 26},
		{"key", 5, 6},
		{"client", 7, 3},
		{"client.ca", 7, 7},
		{"client.depth", 7, 3}, // not written: its parent
		{"labels.team", 2, 1},  // nothing written: the document
	}
	for _, tt := range tests {
		got := e.Position(tt.field)
		if got.File != e.Pos.File || got.Line != tt.line || got.Col != tt.col {
			t.Errorf("Position(%q) = %v, want %s:%d:%d", tt.field, got, e.Pos.File, tt.line, tt.col)
		}
	}
}
