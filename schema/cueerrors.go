package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// This file converts CUE's and the YAML and JSON parsers' errors into
// ours, with positions in the repository's files.

// appendParseError reports a file that is not valid YAML or JSON at the
// parser's position.
func appendParseError(errs *ErrorList, file string, src []byte, err error) {
	if strings.HasSuffix(file, ".json") {
		// encoding/json says what is wrong; CUE only that something is.
		var v any
		var syn *json.SyntaxError
		if jerr := json.Unmarshal(src, &v); errors.As(jerr, &syn) {
			line, col := lineCol(src, int(syn.Offset))
			errs.add(Pos{File: file, Line: line, Col: col}, "", "invalid JSON: %s", scrub(syn.Error()))
			return
		}
	}
	for _, e := range cueerrors.Errors(err) {
		pos := cuePos(e.Position())
		if pos.File == "" {
			pos.File = file
		}
		format, args := e.Msg()
		msg := fmt.Sprintf(format, redactArgs(args)...)
		if msg == "" {
			msg = e.Error()
		}
		// yaml.v3 style "file:line: message": the position says it.
		if i := strings.Index(msg, file+":"); i >= 0 {
			rest := msg[i+len(file)+1:]
			if j := strings.Index(rest, ": "); j >= 0 {
				if n, err := strconv.Atoi(rest[:j]); err == nil {
					if pos.Line == 0 {
						pos.Line = n
					}
					msg = rest[j+2:]
				}
			}
		}
		errs.add(pos, "", "invalid YAML: %s", scrub(msg))
	}
}

// lineCol converts a byte offset into a line and column, counting from 1.
func lineCol(src []byte, off int) (int, int) {
	off = min(max(off, 0), len(src))
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(src[:off], '\n')
	return line, col
}

// appendCUEErrors converts CUE's errors into ours, one per problem. With a
// doc, positions come from the document's field index: CUE often points at
// the schema or the policy only.
func appendCUEErrors(errs *ErrorList, err error, d *doc, policy ...*ast.File) {
	type key struct{ path, msg string }
	seen := map[key]bool{}
	list := cueerrors.Errors(err)
	for i := 0; i < len(list); i++ {
		e := list[i]
		path := nativePath(e.Path())
		format, args := e.Msg()
		if strings.HasSuffix(format, "errors in empty disjunction:") {
			// The next errors are the alternatives: say it once.
			var alts []string
			for i+1 < len(list) && slices.Equal(list[i+1].Path(), e.Path()) {
				i++
				f, a := list[i].Msg()
				switch {
				case strings.HasPrefix(f, "conflicting values ") && len(a) == 2:
					alts = append(alts, fmt.Sprint(a[0]))
				case strings.HasPrefix(f, "invalid value ") && strings.Contains(f, "out of bound") && len(a) == 2:
					alts = append(alts, fmt.Sprint(a[1]))
				}
			}
			slices.Sort(alts)
			alts = slices.Compact(alts)
			format, args = "value not allowed", nil
			if d != nil && len(alts) > 0 {
				format, args = "value not allowed: want one of %s", []any{strings.Join(alts, ", ")}
			}
			if d == nil {
				format = "value not allowed by the built-in schema"
			}
			if d == nil && i+1 < len(list) && slices.Equal(list[i+1].Path(), e.Path()) {
				continue // the alternatives that follow say more, with positions
			}
		}
		raw := args
		args = redactArgs(args)
		msg := fmt.Sprintf(format, args...)
		if msg == "field not allowed" && d != nil {
			continue // reported by unknownFields, with a hint
		}
		if d != nil {
			if m := mismatched.FindStringSubmatch(msg); m != nil {
				got := d.kinds[path]
				want := m[1]
				if kindName(want) == got {
					want = m[2]
				}
				switch {
				case got == "null":
					msg = "required field is missing" // an empty value, or an ADC pair without it
				case got != "" && kindName(want) != got:
					msg = "want " + article(kindName(want)) + ", got " + article(got)
				}
			}
		}
		if path == "snis" && strings.HasPrefix(msg, "incompatible list lengths (0 and") {
			msg = "at least one SNI is required (a server entity is served by SNI; \"*\" alone is the default certificate)"
		}
		if strings.HasSuffix(msg, `(out of bound !="")`) {
			msg = "must not be empty"
		}
		if msg == "field is required but not present" {
			msg = "required field is missing"
		}
		if d != nil && strings.HasPrefix(format, "incomplete value") {
			if _, written := d.index[path]; !written {
				// A policy made a field required: `labels: team: string`.
				msg = "required field is missing (want " + strings.TrimPrefix(msg, "incomplete value ") + ")"
			}
		}
		if path == "name" && strings.Contains(msg, "out of bound =~") && len(args) > 0 && strings.Contains(fmt.Sprint(args[len(args)-1]), "a-zA-Z0-9._-") {
			shown := fmt.Sprint(args[0])
			if s, err := strconv.Unquote(fmt.Sprint(raw[0])); err == nil && len(s) > 80 {
				shown = fmt.Sprintf("of %d characters", len(s))
			}
			if d != nil && d.rename != nil {
				msg = "invalid id " + shown + ": " + adcNameRule
			} else {
				msg = "invalid name " + shown + ": " + nativeNameRule
			}
		}
		k := key{path, msg}
		if seen[k] {
			continue
		}
		seen[k] = true
		var pos Pos
		shown := path
		if d == nil {
			shown = strings.Join(e.Path(), ".")
		}
		if d != nil {
			d.markBad(path)
			pos, shown = d.where(path)
			if _, written := d.index[path]; !written && strings.HasPrefix(msg, "required field is missing") {
				pos = d.pos
				if p, ok := d.index[path+missingSuffix]; ok {
					pos = p
				}
			}
		} else {
			for _, p := range cueerrors.Positions(e) {
				if p.Filename() != schemaFile || pos.File == "" {
					pos = cuePos(p)
				}
			}
			if pos.File == "" || pos.File == schemaFile {
				// CUE points at the schema or nowhere: find the field in
				// the policy.
				if p := findField(policy, e.Path()); p.IsValid() {
					pos = cuePos(p)
				}
			}
		}
		// Two native fields can be written as one (an ADC item's
		// missing certificates): say it once.
		written := key{"\x00" + shown + "\x00" + pos.String(), msg}
		if seen[written] {
			continue
		}
		seen[written] = true
		*errs = append(*errs, &Error{Pos: pos, Field: scrubField(shown), Msg: scrub(msg)})
	}
}

var mismatched = regexp.MustCompile(`\(mismatched types (\w+) and (\w+)\)`)

// kindName maps a CUE kind to the names exprKind uses.
func kindName(k string) string {
	switch k {
	case "int", "float", "number":
		return "number"
	case "bool":
		return "boolean"
	case "struct":
		return "mapping"
	}
	return k
}

func article(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// nativePath formats a CUE error path as our field path, without the #SSL
// the schema's paths start with.
func nativePath(path []string) string {
	var p string
	for i, s := range path {
		if i == 0 && s == "#SSL" {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			p += "[" + s + "]"
			continue
		}
		if uq, err := literal.Unquote(s); err == nil {
			s = uq
		}
		p = joinPath(p, s)
	}
	return p
}

// redactArgs replaces values in a CUE message that could be certificate or
// key material (multi-line, PEM or long strings) by a placeholder.
func redactArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		s := fmt.Sprint(a)
		if len(s) > 80 || strings.Contains(s, "\n") || strings.Contains(s, `\n`) || strings.Contains(s, "-----") {
			out[i] = "(value not shown)"
			continue
		}
		out[i] = a
	}
	return out
}

func cuePos(p token.Pos) Pos {
	if !p.IsValid() {
		return Pos{}
	}
	return Pos{File: p.Filename(), Line: p.Line(), Col: p.Column()}
}
