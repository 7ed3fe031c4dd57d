package certcheck

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// This file is the only one that imports zlint (STYLE.md: one package per
// heavy library).

// privateSources are the lint sources that hold for any X.509 certificate;
// the CA/B Forum and root program lints are for publicly trusted ones.
var privateSources = lint.SourceList{lint.RFC3279, lint.RFC5280, lint.RFC5480, lint.RFC5891, lint.RFC8813}

// registries returns the zlint registries for publicly and privately
// trusted leaves, filtered once per process.
var registries = sync.OnceValues(func() (lint.Registry, lint.Registry) {
	global := lint.GlobalRegistry()
	var public []string
	for _, n := range global.Names() {
		// The lifetime limits of SC-081 are lifetime_public's and
		// lifetime_private's, which report them with their severity.
		if !strings.Contains(n, "_valid_time_longer_than_") {
			public = append(public, n)
		}
	}
	pub, err := global.Filter(lint.FilterOptions{IncludeNames: public})
	if err != nil {
		pub = global
	}
	priv, err := global.Filter(lint.FilterOptions{IncludeSources: privateSources})
	if err != nil {
		priv = global
	}
	return pub, priv
})

// lintResult is one lint that did not pass.
type lintResult struct {
	name    string
	status  lint.LintStatus
	details string
}

// runLints runs zlint on leaf: every lint for a publicly trusted leaf, the
// RFC lints for a private one. It returns the lints that reported a
// warning, an error or a fatal result, sorted by name.
func runLints(leaf *x509.Certificate, public bool) ([]lintResult, error) {
	zc, err := zx509.ParseCertificate(leaf.Raw)
	if err != nil {
		return nil, fmt.Errorf("zlint cannot parse the leaf: %w", err)
	}
	pub, priv := registries()
	reg := priv
	if public {
		reg = pub
	}
	rs := zlint.LintCertificateEx(zc, reg)
	var out []lintResult
	for n, res := range rs.Results {
		if res.Status >= lint.Warn {
			out = append(out, lintResult{name: n, status: res.Status, details: res.Details})
		}
	}
	slices.SortFunc(out, func(a, b lintResult) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// checkLints reports zlint's warnings and errors on leaf with the lint's
// name and description.
func checkLints(r *report, leaf *x509.Certificate, public bool) {
	results, err := runLints(leaf, public)
	if err != nil {
		r.add(LintError, "%v", err)
		return
	}
	pub, priv := registries()
	reg := priv
	if public {
		reg = pub
	}
	for _, l := range results {
		check := LintWarning
		switch {
		case l.status >= lint.Error:
			check = LintError
		case !public:
			check = LintPrivateWarning
		}
		desc := ""
		if m := reg.ByName(l.name); m != nil {
			desc = m.Description
		}
		msg := fmt.Sprintf("zlint %s: %s", l.name, strings.TrimSuffix(desc, "."))
		if l.details != "" {
			msg += " (" + strings.TrimSuffix(l.details, ".") + ")"
		}
		r.add(check, "%s", msg)
	}
}
