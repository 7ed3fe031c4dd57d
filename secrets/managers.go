package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"certops/secrets/ref"
)

// Managers are the named secret managers of a --secret-managers file: the
// secret objects of APISIX (/apisix/secrets/<provider>/<id>) as YAML lists
// under the provider's name:
//
//	vault:
//	  - id: "1"
//	    uri: https://vault.example.com:8200
//	    prefix: kv/apisix
//	    token: $env://VAULT_TOKEN
//	aws:
//	  - id: prod
//	    region: eu-west-1
//	    access_key_id: $env://AWS_ACCESS_KEY_ID
//	    secret_access_key: $env://AWS_SECRET_ACCESS_KEY
//
// $secret://vault/<id>/<key-path>/<field> then reads GET
// <uri>/v1/<prefix>/<key-path> (KV v1 or v2, detected) and takes <field>,
// as APISIX does; $secret://aws/<id>/<secret-id>[/<field>] reads AWS with
// that object's region, endpoint and credentials. A reference whose first
// segment is not a configured id keeps its usual meaning. A nil *Managers
// has no managers.
type Managers struct {
	file  string
	lists map[string][]Manager
}

// Manager is one secret object of the file. Its values may be $env://NAME,
// read when the provider opens.
type Manager struct {
	ID     string
	fields map[string]string
	pos    map[string]string // field → "file:line:col"
	name   string            // "vault[0]"
	at     string            // "file:line:col"
}

// LoadManagers reads a --secret-managers file. Errors name the file, line,
// column and field.
func LoadManagers(file string) (*Managers, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("secret managers: %w", err)
	}
	return ParseManagers(file, data)
}

// ParseManagers parses the content of a --secret-managers file named file.
func ParseManagers(file string, data []byte) (*Managers, error) {
	m := &Managers{file: file, lists: make(map[string][]Manager)}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return m, nil // an empty file: no managers
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	at := func(n *yaml.Node, field string) string {
		return fmt.Sprintf("%s:%d:%d: %s", file, n.Line, n.Column, field)
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want a mapping of provider names (vault, aws) to lists of secret managers", at(root, "(root)"))
	}
	var errs []error
	seenProv := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		prov := k.Value
		if first, dup := seenProv[prov]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicate key (first at %s:%d:%d)", at(k, prov), file, first.Line, first.Column))
			continue
		}
		seenProv[prov] = k
		reg, ok := registration(prov)
		if !ok || len(reg.ManagerFields.Required) == 0 {
			errs = append(errs, fmt.Errorf("%s: unknown secret manager provider (want %s)", at(k, prov), strings.Join(managerProviders(), " or ")))
			continue
		}
		if v.Kind != yaml.SequenceNode {
			errs = append(errs, fmt.Errorf("%s: want a list of secret managers", at(v, prov)))
			continue
		}
		ids := map[string]string{}
		for j, item := range v.Content {
			name := fmt.Sprintf("%s[%d]", prov, j)
			mg, err := parseManager(item, name, reg.ManagerFields, at)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if first, dup := ids[mg.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: duplicate id %q (first at %s)", at(item, name+".id"), mg.ID, first))
				continue
			}
			ids[mg.ID] = mg.pos["id"]
			m.lists[prov] = append(m.lists[prov], mg)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func parseManager(n *yaml.Node, name string, fields ManagerFields, at func(*yaml.Node, string) string) (Manager, error) {
	if n.Kind != yaml.MappingNode {
		return Manager{}, fmt.Errorf("%s: want a secret manager object", at(n, name))
	}
	pos := func(n *yaml.Node) string { return strings.TrimSuffix(at(n, ""), ": ") }
	mg := Manager{fields: map[string]string{}, pos: map[string]string{}, name: name, at: pos(n)}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := name + "." + k.Value
		if first, dup := mg.pos[k.Value]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicate key (first at %s)", at(k, field), first))
			continue
		}
		if !slices.Contains(fields.Required, k.Value) && !slices.Contains(fields.Optional, k.Value) {
			errs = append(errs, fmt.Errorf("%s: unknown field (want %s)", at(k, field), strings.Join(append(slices.Clone(fields.Required), fields.Optional...), ", ")))
			continue
		}
		if v.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%s: want a string", at(v, field)))
			continue
		}
		mg.fields[k.Value] = v.Value
		mg.pos[k.Value] = pos(k)
	}
	for _, req := range fields.Required {
		if _, ok := mg.fields[req]; !ok {
			errs = append(errs, fmt.Errorf("%s: missing field %s", at(n, name), req))
		}
	}
	mg.ID = mg.fields["id"]
	if _, ok := mg.fields["id"]; ok && (mg.ID == "" || strings.ContainsAny(mg.ID, "/ \t\r\n")) {
		errs = append(errs, fmt.Errorf("%s: %q is not a secret manager id (one path segment, not empty)", at(n, name+".id"), mg.ID))
	}
	return mg, errors.Join(errs...)
}

// managerProviders lists the providers that have named managers.
func managerProviders() []string {
	var out []string
	for _, n := range slices.Backward(ref.Providers()) {
		if r, ok := registration(n); ok && len(r.ManagerFields.Required) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// of returns a provider's managers.
func (m *Managers) of(provider string) []Manager {
	if m == nil {
		return nil
	}
	return m.lists[provider]
}

// File returns the file the managers were read from.
func (m *Managers) File() string {
	if m == nil {
		return ""
	}
	return m.file
}

// Has reports whether provider has a manager named id.
func (m *Managers) Has(provider, id string) bool {
	return slices.ContainsFunc(m.of(provider), func(mg Manager) bool { return mg.ID == id })
}

// CheckReference returns a warning for a reference of a provider with
// managers whose first segment is not a configured manager id: it is then
// read with the provider's usual configuration, which for a repository
// written for APISIX is rarely what was meant. It returns "" otherwise, and
// always for a nil *Managers (no --secret-managers file).
func (m *Managers) CheckReference(s string) string {
	if m == nil {
		return ""
	}
	r, err := ref.Parse(s)
	if err != nil || !slices.Contains(managerProviders(), r.Provider) {
		return ""
	}
	id, _, _ := strings.Cut(r.Path, "/")
	if m.Has(r.Provider, id) {
		return ""
	}
	return fmt.Sprintf("secret reference %s: %q is not a %s secret manager id of %s; it is read with the %s settings of the environment",
		s, id, r.Provider, m.file, r.Provider)
}

// values returns the manager's fields with $env://NAME values read from
// the environment.
func (mg Manager) values(getenv func(string) (string, bool)) (map[string]string, error) {
	out := make(map[string]string, len(mg.fields))
	for k, v := range mg.fields {
		if !ref.Is(v) {
			out[k] = v
			continue
		}
		r, err := ref.Parse(v)
		if err != nil || r.Provider != "env" || strings.Contains(r.Path, "/") {
			return nil, mg.errorf(k, "only $env://NAME references are allowed here")
		}
		val, ok := getenv(r.Path)
		if !ok || val == "" {
			return nil, mg.errorf(k, "environment variable %s is not set", r.Path)
		}
		out[k] = val
	}
	return out, nil
}

// errorf is an error about one field of the manager, never quoting a
// value read from the environment.
func (mg Manager) errorf(field, format string, args ...any) error {
	pos := mg.pos[field]
	if pos == "" {
		pos = mg.at
	}
	return fmt.Errorf("%s: %s.%s: %s", pos, mg.name, field, fmt.Sprintf(format, args...))
}
