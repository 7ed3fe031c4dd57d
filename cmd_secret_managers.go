package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"certops/schema"
	"certops/secrets"
)

// addSecretManagersFlag adds --secret-managers (issue 18.8) to run and
// validate.
func addSecretManagersFlag(fl *pflag.FlagSet, file *string) {
	fl.StringVar(file, "secret-managers", "", "YAML file of APISIX secret objects (vault: and aws: lists of {id, ...}) that $secret://vault/<id>/... and $secret://aws/<id>/... references name")
}

// loadSecretManagers reads --secret-managers; "" means none.
func loadSecretManagers(file string) (*secrets.Managers, error) {
	if file == "" {
		return nil, nil
	}
	m, err := secrets.LoadManagers(file)
	if err != nil {
		return nil, fmt.Errorf("--secret-managers: %w", err)
	}
	return m, nil
}

// checkSecretManagers warns, at the reference's position, about each
// vault or aws reference whose first segment is not a manager id of m.
// Without --secret-managers (m nil) it does nothing.
func checkSecretManagers(res *schema.Result, m *secrets.Managers) {
	if m == nil {
		return
	}
	for _, e := range res.Entities {
		fields := map[string]string{"client.ca": e.ClientCA}
		for i, ch := range e.Chains {
			cert, key := "cert", "key"
			if i > 0 {
				cert, key = fmt.Sprintf("certs[%d]", i-1), fmt.Sprintf("keys[%d]", i-1)
			}
			fields[cert], fields[key] = ch.Cert, ch.Key
		}
		for _, field := range slices.Sorted(maps.Keys(fields)) {
			if msg := m.CheckReference(fields[field]); msg != "" {
				res.Problems = append(res.Problems, &schema.Error{Severity: schema.SeverityWarning, Pos: e.Position(field), Field: field, Msg: msg})
			}
		}
	}
	slices.SortStableFunc(res.Problems, func(a, b *schema.Error) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
