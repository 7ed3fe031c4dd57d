// Package schema turns repository files into trusted SSL entities: it reads
// YAML and JSON entity files, validates them against the built-in CUE schema
// and checks their certificates, reporting every problem with its file, line,
// column and field. It knows nothing of Git: its input is an [fs.FS].
//
// Load is safe for concurrent use.
package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Result is what Load found in a repository.
type Result struct {
	Entities []*Entity
	// Problems holds errors and warnings; Problems.Err() is nil when the
	// repository is valid.
	Problems ErrorList
	// Ignored lists files that are neither entity files nor policy.
	Ignored []string
}

// rawSSL is one document as decoded from CUE.
type rawSSL struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	SNIs   []string `json:"snis"`
	Cert   string   `json:"cert"`
	Key    string   `json:"key"`
	Certs  []string `json:"certs"`
	Keys   []string `json:"keys"`
	Client *struct {
		CA    string `json:"ca"`
		Depth *int   `json:"depth"`
	} `json:"client"`
	Protocols []string          `json:"ssl_protocols"`
	Labels    map[string]string `json:"labels"`
}

type rawDoc struct {
	ssl rawSSL
	pos Pos
}

// Options tune Load and validation.
type Options struct {
	// Root is the folder of fsys that holds the entities; "" is ".".
	Root string
	// WarnWithin makes a certificate that expires within it a warning
	// (default 720h).
	WarnWithin time.Duration
	// Now returns the current time for validity checks; nil is time.Now.
	Now func() time.Time
}

// Load reads every entity file below opts.Root in fsys and validates it.
// A non-nil error means the files could not be read; problems in their
// content are in Result.Problems.
func Load(fsys fs.FS, opts Options) (*Result, error) {
	root := opts.Root
	c, err := compiled()
	if err != nil {
		return nil, err
	}
	if root == "" {
		root = "."
	}
	res := &Result{}
	err = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch path.Ext(p) {
		case ".yaml", ".yml", ".json":
		default:
			res.Ignored = append(res.Ignored, p)
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(src)
		for _, doc := range c.decodeYAML(p, src, &res.Problems) {
			res.Entities = append(res.Entities, newEntity(doc, hex.EncodeToString(sum[:])))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func newEntity(doc rawDoc, hash string) *Entity {
	r := doc.ssl
	e := &Entity{
		Name:        r.Name,
		Type:        Type(r.Type),
		Chains:      []Chain{{Cert: r.Cert, Key: r.Key}},
		Protocols:   r.Protocols,
		Labels:      r.Labels,
		Pos:         doc.pos,
		Hash:        hash,
		ClientDepth: 1,
	}
	if e.Type == "" {
		e.Type = TypeServer
	}
	for _, s := range r.SNIs {
		e.SNIs = append(e.SNIs, strings.ToLower(strings.TrimSuffix(s, ".")))
	}
	for i := range r.Certs {
		if i < len(r.Keys) {
			e.Chains = append(e.Chains, Chain{Cert: r.Certs[i], Key: r.Keys[i]})
		}
	}
	if r.Client != nil {
		e.ClientCA = r.Client.CA
		if r.Client.Depth != nil {
			e.ClientDepth = *r.Client.Depth
		}
	}
	return e
}
