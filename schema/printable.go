package schema

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Printable returns s as text output may show it: s itself when every
// character is printable, else s quoted as %q would (with the control and
// other non-printable characters escaped). File names come from
// repositories that the reader does not control: a name holding a newline
// would forge an output line, an ANSI escape would recolour the reviewer's
// terminal (issue 16 item 7). Every text formatter passes file names
// through it: positions (Pos.String), lists of files, plans; JSON needs no
// such care.
func Printable(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
