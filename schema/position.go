package schema

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Pos is a position in a repository file. Line and Col count from 1; zero
// means unknown.
type Pos struct {
	File string `json:"file,omitempty"` // slash-separated, relative to the repository root
	Line int    `json:"line,omitempty"`
	Col  int    `json:"column,omitempty"`
}

// String formats the position as file:line:col, leaving out unknown parts.
func (p Pos) String() string {
	s := Printable(p.File)
	if p.Line > 0 {
		s += fmt.Sprintf(":%d", p.Line)
		if p.Col > 0 {
			s += fmt.Sprintf(":%d", p.Col)
		}
	}
	return s
}

// Severity tells an error from a warning. The zero value is an error.
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

// MarshalText encodes the severity as its String.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes "error" or "warning".
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = SeverityError
	case "warning":
		*s = SeverityWarning
	default:
		return fmt.Errorf("unknown severity %q (want error or warning)", b)
	}
	return nil
}

// ParseSeverity returns the Severity named s ("error" or "warning").
func ParseSeverity(s string) (Severity, error) {
	var sev Severity
	err := sev.UnmarshalText([]byte(s))
	return sev, err
}

// Error is one problem in a repository file: the one problem type of
// certops, from validation to the status, the admin API and every report.
// Its JSON form is flat:
//
//	{"severity": "error", "file": "certs/shop.yaml", "line": 3, "column": 7,
//	 "field": "snis[0]", "message": "..."}
//
// with file, line, column and field left out when unknown. Msg never holds
// a certificate, key or secret value.
type Error struct {
	Field string `json:"field,omitempty"` // the field path, e.g. "snis[1]"; empty for the whole document
	Msg   string `json:"message"`
	// Pos is where; File is empty for a problem of no file. Its line and
	// column and the severity come last: the collector scans a problem up
	// to its last pointer (Pos.File), and a cached file keeps its
	// warnings for as long as it is unchanged (issue 13).
	Pos
	Severity Severity `json:"severity"`
}

// errorJSON is the JSON form of an Error, in the order it has always had.
type errorJSON struct {
	Severity Severity `json:"severity"`
	Pos
	Field string `json:"field,omitempty"`
	Msg   string `json:"message"`
}

// MarshalJSON encodes the problem flat, severity first (see Error).
func (e Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorJSON{Severity: e.Severity, Pos: e.Pos, Field: e.Field, Msg: e.Msg})
}

// Error formats the problem as file:line:col: field: message, with
// "warning: " before the message of a warning. Unknown parts are left out.
func (e Error) Error() string {
	var b strings.Builder
	if pos := e.Pos.String(); pos != "" {
		b.WriteString(pos + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// String is Error: a problem prints as file:line:col: field: message.
func (e Error) String() string { return e.Error() }

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
	*l = append(*l, &Error{Pos: pos, Field: scrubField(field), Msg: scrub(fmt.Sprintf(format, args...))})
}

// scrub removes from a message anything that looks like key or
// certificate material: a PEM armour line and what follows it, and long
// base64 runs. Messages are built from metadata, never from values; this
// is the second line of defence, for text quoted by a parser.
func scrub(msg string) string { return scrubRuns(msg, 40) }

// scrubField is scrub for a field path, made of labels the file chose: a
// run of 16 mixed-case base64 characters there is a fragment of a pasted
// key rather than a field name.
func scrubField(field string) string { return scrubRuns(field, 16) }

func scrubRuns(msg string, minRun int) string {
	if i := strings.Index(msg, "-----BEGIN"); i >= 0 {
		msg = msg[:i] + "(value not shown)"
	}
	for start := 0; start < len(msg); {
		if !isBase64Byte(msg[start]) {
			start++
			continue
		}
		end := start
		var upper, lower, digit bool
		for end < len(msg) && isBase64Byte(msg[end]) {
			c := msg[end]
			upper = upper || c >= 'A' && c <= 'Z'
			lower = lower || c >= 'a' && c <= 'z'
			digit = digit || c >= '0' && c <= '9'
			end++
		}
		// Base64 of key material mixes cases and digits; paths and
		// names of that length rarely do.
		if end-start >= minRun && upper && lower && digit {
			msg = msg[:start] + "(value not shown)" + msg[end:]
			end = start + len("(value not shown)")
		}
		start = end
	}
	return msg
}

func isBase64Byte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}
