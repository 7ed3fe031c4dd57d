package schema

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"certops/certcheck"
	"certops/clientauth"
)

// MaxFileSize is the largest entity or policy file read; larger files are
// refused with an error (an entity is a few kilobytes).
const MaxFileSize = 1 << 20

// DefaultWarnWithin is the default of Options.WarnWithin.
const DefaultWarnWithin = 720 * time.Hour

// FileKind tells what Load does with a file.
type FileKind int

// File kinds.
const (
	FileIgnored FileKind = iota // neither entity nor policy, or a dot-path
	FileEntity                  // *.yaml, *.yml, *.json
	FilePolicy                  // *.cue, package certops, and *.roots.pem (pinned roots)
)

// String returns "ignored", "entity" or "policy".
func (k FileKind) String() string {
	switch k {
	case FileEntity:
		return "entity"
	case FilePolicy:
		return "policy"
	}
	return "ignored"
}

// Classify tells from its slash-separated path, relative to the entity
// folder, what a file is. Any dot-file or file below a dot-folder is
// ignored.
func Classify(p string) FileKind {
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." && seg != ".." {
			return FileIgnored
		}
	}
	if certcheck.IsPinned(p) {
		return FilePolicy // reviewed like the policy: a change revalidates every file
	}
	switch path.Ext(p) {
	case ".yaml", ".yml", ".json":
		return FileEntity
	case ".cue":
		return FilePolicy
	}
	return FileIgnored
}

// PolicyFile is one *.cue policy file of a repository (DESIGN.md 2.2).
type PolicyFile struct {
	Path string // slash-separated, as positions name it
	Src  []byte
}

// FileResult is what validating one entity file found.
type FileResult struct {
	Path string
	// Entities holds every entity of the file that passed the schema, in
	// file order, valid or not: they take part in the checks across files.
	// Use them only when Problems.Err() is nil.
	Entities []*Entity
	Problems ErrorList
	// Documents counts the entity documents of the file, including those
	// that failed the schema and are not in Entities.
	Documents int

	one [1]*Entity // backs Entities when the file has one (compact.go)
}

// Validator validates entity files against the built-in schema and a
// repository's policy. It is safe for concurrent use: the CUE part of a
// file runs on one of the process's CUE lanes (one per CPU; CUE is not safe
// for concurrent use), the cryptographic checks run in parallel.
type Validator struct {
	schemas    []*cueSchema // one per lane, indexed like lanes()
	policyHash string
	now        func() time.Time
	warnWithin time.Duration
	hygiene    *certcheck.Checker                // nil unless Options.Hygiene
	reread     func(path string) ([]byte, error) // Options.Reread
}

// NewValidator compiles the built-in schema (once per process) with the
// repository's policy files. Policy problems are returned with their
// positions; the Validator is then usable but checks the built-in schema
// only, and the revision must be treated as invalid.
func NewValidator(policy []PolicyFile, opts Options) (*Validator, ErrorList) {
	policy, pinned := splitPinned(policy)
	schemas, hash, errs := compilePolicy(policy)
	v := &Validator{schemas: schemas, now: opts.Now, warnWithin: opts.WarnWithin, reread: opts.Reread}
	if v.now == nil {
		v.now = time.Now
	}
	if v.warnWithin == 0 {
		v.warnWithin = DefaultWarnWithin
	}
	hygiene, hygieneHash, herrs := newChecker(opts.Hygiene, pinned, schemas[0].checks, opts)
	v.hygiene = hygiene
	errs = append(errs, herrs...)
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%s", hash, v.warnWithin, hygieneHash))
	v.policyHash = hex.EncodeToString(h[:])
	sortProblems(errs)
	return v, errs
}

// PolicyHash identifies the schema, the policy and the options a result
// depends on: cached file results are valid only under the same hash.
// (Certificate validity also depends on the time: a cached result does not
// notice a certificate expiring.)
func (v *Validator) PolicyHash() string { return v.policyHash }

// File parses and validates one entity file: schema and policy, then the
// checks of each entity (PEM, keys, SNI syntax and coverage, validity,
// references). Checks across files are CheckSet's.
func (v *Validator) File(path string, src []byte) *FileResult {
	return v.file(path, src, v.reread != nil)
}

// file is File; lean makes its entities lean (see Options.Reread).
func (v *Validator) file(path string, src []byte, lean bool) *FileResult {
	fr := &FileResult{Path: path}
	if len(src) > MaxFileSize {
		fr.Problems.add(Pos{File: path}, "", "file is %s; entity files are limited to 1 MiB", sizeString(len(src)))
		return fr
	}
	type checked struct {
		d     *doc
		raw   rawSSL
		valid bool
	}
	var docs []checked
	func() {
		i, l := acquireLane()
		defer releaseLane(i, l)
		defer func() {
			// The YAML and CUE libraries have panicked on hostile input
			// (found by FuzzValidate); a bad file must not stop the daemon.
			if r := recover(); r != nil {
				docs = nil
				fr.Entities = nil
				fr.Problems.add(Pos{File: path}, "", "cannot read this file: the parser failed (%s)", scrub(fmt.Sprint(r)))
			}
		}()
		for _, d := range splitDocs(path, loneCRToLF(src), &fr.Problems) {
			raw, valid := v.schemas[i].check(d, &fr.Problems)
			docs = append(docs, checked{d, raw, valid})
		}
	}()
	now := v.now()
	fr.Documents = len(docs)
	for _, c := range docs {
		// The syntax tree is not needed any more; entities keep the
		// field index only, compacted.
		c.d.release()
		if c.valid {
			e := v.entity(c.d, c.raw, now, &fr.Problems)
			if lean {
				e.dropPEM()
			}
			fr.Entities = append(fr.Entities, e)
			continue
		}
		if c.d.loose != nil {
			// Check the fields that passed the schema too; the entity
			// itself is invalid and takes no further part.
			v.entity(c.d, looseSSL(c.d.loose, c.d.bad), now, &fr.Problems)
		}
	}
	sortProblems(fr.Problems)
	fr.compact()
	return fr
}

// entity builds an Entity from a document that passed the schema and runs
// the per-entity checks.
func (v *Validator) entity(d *doc, r rawSSL, now time.Time, errs *ErrorList) *Entity {
	e := &Entity{
		Name:        r.Name,
		Type:        Type(r.Type),
		Chains:      []Chain{{Cert: r.Cert, Key: r.Key}},
		Protocols:   r.Protocols,
		Labels:      r.Labels,
		Desc:        r.Desc,
		Disabled:    d.disabled,
		Pos:         d.pos,
		ClientDepth: 1,
		place:       &placement{fields: d.fields, index: d.index, rename: d.rename},
		v:           v,
	}
	if e.Type == "" {
		e.Type = TypeServer
	}
	report := func(field string, warn bool, format string, args ...any) {
		pos, shown := d.where(field)
		sev := SeverityError
		if warn {
			sev = SeverityWarning
		}
		*errs = append(*errs, &Error{Pos: pos, Field: scrubField(shown), Msg: scrub(fmt.Sprintf(format, args...)), Severity: sev})
	}
	seen := map[string]int{}
	for i, s := range r.SNIs {
		if s == "" {
			continue // refused by the schema
		}
		field := fmt.Sprintf("snis[%d]", i)
		n, err := NormalizeSNI(s)
		if err != nil {
			report(field, false, "%v", err)
			continue
		}
		if j, dup := seen[n]; dup {
			report(field, false, "%s repeats snis[%d]", n, j)
			continue
		}
		seen[n] = i
		if p := e.place; len(e.SNIs) != i || p.sniSrc != nil {
			// An earlier SNI was refused: the indexes differ from here.
			if p.sniSrc == nil {
				for j := range len(e.SNIs) {
					p.sniSrc = append(p.sniSrc, j) // the identity so far
				}
			}
			p.sniSrc = append(p.sniSrc, i)
		}
		e.SNIs = append(e.SNIs, n)
	}
	if len(r.Certs) != len(r.Keys) {
		field := "certs"
		if len(r.Keys) > len(r.Certs) {
			field = "keys"
		}
		report(field, false, "%d certs but %d keys: certs and keys pair up by position", len(r.Certs), len(r.Keys))
	}
	for i := range min(len(r.Certs), len(r.Keys)) {
		e.Chains = append(e.Chains, Chain{Cert: r.Certs[i], Key: r.Keys[i]})
	}
	if r.Client != nil {
		e.ClientCA = r.Client.CA
		if r.Client.Depth != nil {
			e.ClientDepth = *r.Client.Depth
			if e.ClientDepth > clientauth.MaxDepth {
				// APISIX sets no upper bound; a longer chain than this is
				// not verified by the gateway anyway.
				report("client.depth", true, "depth %d is served as %d, the most intermediates the gateway verifies", e.ClientDepth, clientauth.MaxDepth)
				e.ClientDepth = clientauth.MaxDepth
			}
		}
	}
	bad := map[string]bool{}
	checkValue := func(field, value string) {
		switch {
		case IsReference(value):
			if _, err := ParseReference(value); err != nil {
				report(field, false, "%v", err)
				bad[field] = true
			}
		case strings.HasPrefix(strings.TrimSpace(value), "$"):
			report(field, false, "neither PEM nor a secret reference (want $env://NAME, $secret://vault/<path>/<field> or $secret://aws/<secret-id>)")
			bad[field] = true
		}
	}
	for i, ch := range e.Chains {
		certField, keyField := "cert", "key"
		if i > 0 {
			certField, keyField = fmt.Sprintf("certs[%d]", i-1), fmt.Sprintf("keys[%d]", i-1)
		}
		checkValue(certField, ch.Cert)
		checkValue(keyField, ch.Key)
	}
	if e.ClientCA != "" {
		checkValue("client.ca", e.ClientCA)
	}
	e.Hash = contentHash(e)
	m, findings, err := e.checkMaterial(skipBadReferences, false, bad, now, v.warnWithin)
	if err != nil {
		report("", false, "%v", err)
		return e
	}
	for _, f := range findings {
		report(f.field, f.warn, "%s", f.msg)
	}
	e.material.Store(hold(m))
	return e
}

// loneCRToLF turns a carriage return that does not start a CRLF into a
// line feed: YAML counts both as line breaks, and the CUE YAML decoder
// mis-indexes lines on a lone CR. Offsets are unchanged.
func loneCRToLF(src []byte) []byte {
	i := bytes.IndexByte(src, '\r')
	if i < 0 {
		return src
	}
	out := bytes.Clone(src)
	for ; i < len(out); i++ {
		if out[i] == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			out[i] = '\n'
		}
	}
	return out
}

// looseSSL reads the fields of a document that failed the schema which
// have the right types and no schema error of their own.
func looseSSL(m map[string]any, bad map[string]bool) rawSSL {
	bad = maps.Clone(bad)
	for p := range bad {
		// A bad element of snis leaves the others checkable (an empty SNI
		// is the only element the schema refuses, and entity skips it).
		if p == "client.ca" {
			bad["client"] = true
		}
	}
	str := func(k string) string {
		if s, ok := m[k].(string); ok && !bad[k] {
			return s
		}
		return ""
	}
	strs := func(k string) []string {
		l, ok := m[k].([]any)
		if !ok || bad[k] {
			return nil
		}
		out := make([]string, 0, len(l))
		for _, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	r := rawSSL{Name: str("name"), Type: str("type"), SNIs: strs("snis"), Cert: str("cert"), Key: str("key"),
		Certs: strs("certs"), Keys: strs("keys")}
	if r.Certs == nil || r.Keys == nil {
		// Extra chains pair up by position: check them only when both
		// lists read.
		r.Certs, r.Keys = nil, nil
	}
	if c, ok := m["client"].(map[string]any); ok && !bad["client"] {
		if ca, ok := c["ca"].(string); ok {
			r.Client = &struct {
				CA    string `json:"ca"`
				Depth *int   `json:"depth"`
			}{CA: ca}
		}
	}
	if r.Type != string(TypeClient) {
		r.Type = string(TypeServer)
	}
	return r
}

// skipBadReferences is the Values of validation: literal values as they
// are. References never reach it (checkMaterial skips them).
func skipBadReferences(value string) ([]byte, error) { return []byte(value), nil }

// contentHash hashes what an entity serves, so the reconciler can reuse
// work for unchanged entities.
func contentHash(e *Entity) Hash {
	b, _ := json.Marshal(struct {
		Name        string
		Type        Type
		SNIs        []string
		Chains      []Chain
		ClientCA    string
		ClientDepth int
		Protocols   []string
		Labels      map[string]string
		Desc        string
		Disabled    bool
	}{e.Name, e.Type, e.SNIs, e.Chains, e.ClientCA, e.ClientDepth, e.Protocols, e.Labels, e.Desc, e.Disabled})
	return sha256.Sum256(b)
}

// CheckSet runs the checks across files: no entity name and no SNI of an
// enabled entity appears twice in the repository. Each problem names both places. The result does
// not depend on the order of files.
func CheckSet(files []*FileResult) ErrorList {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b *FileResult) int { return strings.Compare(a.Path, b.Path) })
	var errs ErrorList
	names := make(map[string]*Entity, len(files))
	type sniUse struct {
		e *Entity
		i int
	}
	snis := make(map[string]sniUse, len(files))
	for _, f := range files {
		for _, e := range f.Entities {
			if first, dup := names[e.Name]; dup {
				errs = append(errs, nameTwice(e, first))
			} else {
				names[e.Name] = e
			}
			if e.Disabled {
				continue // not served, so its SNIs take none from others
			}
			for i, s := range e.SNIs {
				if first, dup := snis[s]; dup && first.e != e {
					errs = append(errs, sniTwice(s, e, i, first.e, first.i))
				} else if !dup {
					snis[s] = sniUse{e, i}
				}
			}
		}
	}
	errs = append(errs, checkKeyReuse(files)...)
	sortProblems(errs)
	return errs
}

// nameTwice is the problem of e using the name of first, met before it.
func nameTwice(e, first *Entity) *Error {
	pos, shown := e.where("name")
	return &Error{Pos: pos, Field: shown, Msg: fmt.Sprintf("entity name %s is also used at %s", e.Name, first.Position("name"))}
}

// sniTwice is the problem of e serving sni (its SNI i), which first (its
// SNI fi), met before it, serves.
func sniTwice(sni string, e *Entity, i int, first *Entity, fi int) *Error {
	// The field is spelled out only for a duplicate: the checks run over
	// every SNI of the repository.
	pos, shown := e.where(fmt.Sprintf("snis[%d]", e.sniIndex(i)))
	return &Error{Pos: pos, Field: shown, Msg: fmt.Sprintf("%s is also served by entity %s at %s",
		sni, first.Name, first.Position(fmt.Sprintf("snis[%d]", first.sniIndex(fi))))}
}

// sniIndex maps the index of a normalised SNI to its index in the file
// (they differ when an earlier SNI was refused).
func (e *Entity) sniIndex(i int) int {
	if e.place != nil && i < len(e.place.sniSrc) {
		return e.place.sniSrc[i]
	}
	return i
}

// written returns a native field path as the file writes it, without the
// item's prefix (an ADC item's "cert" is "certificates[0].certificate").
func (e *Entity) written(field string) string {
	_, shown := e.where(field)
	if i := strings.Index(shown, "]."); strings.HasPrefix(shown, "ssls[") && i >= 0 {
		return shown[i+2:]
	}
	return shown
}

func (e *Entity) where(field string) (Pos, string) {
	p := placed{pos: e.Pos, fields: e.fieldIndex()}
	if e.place != nil {
		p.index, p.rename = e.place.index, e.place.rename
	}
	return p.where(field)
}

func sortProblems(l ErrorList) {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(
			strings.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
}

func sizeString(n int) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
