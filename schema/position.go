package schema

import (
	"fmt"
	"strings"
)

// Pos is a position in a repository file. Line and Col count from 1; zero
// means unknown.
type Pos struct {
	File string // slash-separated, relative to the repository root
	Line int
	Col  int
}

// String formats the position as file:line:col, leaving out unknown parts.
func (p Pos) String() string {
	s := p.File
	if p.Line > 0 {
		s += fmt.Sprintf(":%d", p.Line)
		if p.Col > 0 {
			s += fmt.Sprintf(":%d", p.Col)
		}
	}
	return s
}

// Severity tells an error from a warning.
type Severity int

// Severities.
const (
	SeverityError Severity = iota
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Error is one problem in a repository file.
type Error struct {
	Pos      Pos
	Field    string // the field path, e.g. "snis[1]"; empty for the whole document
	Msg      string
	Severity Severity
}

// Error formats the problem as file:line:col: field: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// ErrorList is a list of problems; as an error it reports all of them.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns l as an error if it holds at least one error (not counting
// warnings), else nil.
func (l ErrorList) Err() error {
	for _, e := range l {
		if e.Severity == SeverityError {
			return l
		}
	}
	return nil
}

func (l *ErrorList) add(pos Pos, field, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Field: field, Msg: fmt.Sprintf(format, args...)})
}
