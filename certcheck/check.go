package certcheck

import (
	"fmt"
	"slices"
	"strings"
)

// Severity is how a finding counts.
type Severity string

// Severities. A check set to SeverityOff reports nothing.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityOff     Severity = "off"
)

// String returns the severity as policy files write it.
func (s Severity) String() string { return string(s) }

// ParseSeverity returns the Severity named s.
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(s); v {
	case SeverityError, SeverityWarning, SeverityOff:
		return v, nil
	}
	return "", fmt.Errorf("unknown severity %q (want error, warning or off)", s)
}

// Check names one hygiene check. Its name is the key of #Checks in policy.
type Check string

// The checks, in the order they run.
const (
	ChainDuplicate      Check = "chain_duplicate"       // a certificate appears twice in a chain
	ChainUnrelated      Check = "chain_unrelated"       // a certificate is not on the path from the leaf
	ChainOrder          Check = "chain_order"           // the path is there but out of order
	MissingIntermediate Check = "missing_intermediate"  // the leaf's issuer is neither in the chain nor a root
	UntrustedRoot       Check = "untrusted_root"        // the chain ends at a root no one trusts
	ChainInvalid        Check = "chain_invalid"         // crypto/x509 refuses the path (name constraints, CA flags)
	WeakKey             Check = "weak_key"              // RSA below 2048 bits
	WeakSignature       Check = "weak_signature"        // SHA-1 or MD5
	WeakCurve           Check = "weak_curve"            // ECDSA curve other than P-256, P-384, P-521
	MissingEKU          Check = "missing_eku"           // no serverAuth (server) or clientAuth (client)
	LifetimePublic      Check = "lifetime_public"       // publicly trusted leaf over the SC-081 maximum
	LifetimePrivate     Check = "lifetime_private"      // privately trusted leaf over the SC-081 maximum
	LintError           Check = "zlint_error"           // a zlint lint's error (or fatal)
	LintWarning         Check = "zlint_warning"         // a zlint lint's warning on a public leaf
	LintPrivateWarning  Check = "zlint_private_warning" // an RFC lint's warning on a private leaf
	KeyReuse            Check = "key_reuse"             // one public key in two entities
	KeyReusedOnRenewal  Check = "key_reused_on_renewal" // a renewed certificate kept the old key
)

// String returns the check's name.
func (c Check) String() string { return string(c) }

// defaults holds every check with its default severity, and what it is
// about, for the CUE definition and the documentation.
var defaults = []struct {
	check Check
	sev   Severity
	doc   string
}{
	{ChainDuplicate, SeverityError, "a certificate appears twice in a chain"},
	{ChainUnrelated, SeverityError, "a chain holds a certificate that is not on the path from the leaf to its root"},
	{ChainOrder, SeverityError, "the chain is not leaf first, each certificate followed by its issuer"},
	{MissingIntermediate, SeverityError, "the leaf's issuer is neither in the chain nor a trusted root"},
	{UntrustedRoot, SeverityWarning, "the chain ends at a root that is not trusted (system roots, --roots, *.roots.pem)"},
	{ChainInvalid, SeverityError, "crypto/x509 refuses the chain (name constraints, CA flags, path length)"},
	{WeakKey, SeverityError, "an RSA key below 2048 bits anywhere in the chain"},
	{WeakSignature, SeverityError, "a SHA-1 or MD5 signature anywhere in the chain"},
	{WeakCurve, SeverityError, "an ECDSA key on a curve other than P-256, P-384 or P-521"},
	{MissingEKU, SeverityError, "a server leaf without serverAuth, or a client leaf without clientAuth"},
	{LifetimePublic, SeverityError, "a publicly trusted leaf whose lifetime exceeds the maximum in force at its notBefore (SC-081)"},
	{LifetimePrivate, SeverityWarning, "a privately trusted leaf whose lifetime exceeds that maximum"},
	{LintError, SeverityError, "zlint reports an error on the leaf"},
	{LintWarning, SeverityWarning, "zlint reports a warning on a publicly trusted leaf"},
	{LintPrivateWarning, SeverityOff, "zlint reports a warning (an RFC SHOULD, such as a missing subject key identifier) on a privately trusted leaf"},
	{KeyReuse, SeverityWarning, "two entities serve the same public key"},
	{KeyReusedOnRenewal, SeverityWarning, "a certificate was renewed without a new key (certops diff)"},
}

// Checks returns every check, in the order they run.
func Checks() []Check {
	out := make([]Check, len(defaults))
	for i, d := range defaults {
		out[i] = d.check
	}
	return out
}

// Default returns the default severity of c ("" for an unknown check).
func Default(c Check) Severity {
	for _, d := range defaults {
		if d.check == c {
			return d.sev
		}
	}
	return ""
}

// Doc returns a one-line description of c.
func Doc(c Check) string {
	for _, d := range defaults {
		if d.check == c {
			return d.doc
		}
	}
	return ""
}

// Policy overrides the default severity of checks. The zero value (nil)
// is the defaults. A Policy is not modified after it is handed to New.
type Policy map[Check]Severity

// ParsePolicy reads a policy from check names to severity names, as CUE
// decodes #Checks. An unknown check or severity is an error naming it.
func ParsePolicy(m map[string]string) (Policy, error) {
	p := Policy{}
	var errs []string
	for k, v := range m {
		if Default(Check(k)) == "" {
			errs = append(errs, fmt.Sprintf("unknown check %q", k))
			continue
		}
		s, err := ParseSeverity(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		p[Check(k)] = s
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return nil, fmt.Errorf("#Checks: %s", strings.Join(errs, "; "))
	}
	return p, nil
}

// Severity returns the severity of c under p.
func (p Policy) Severity(c Check) Severity {
	if s, ok := p[c]; ok {
		return s
	}
	return Default(c)
}

// CUEDefinition returns the #Checks definition, without a package clause,
// that schema compiles with the built-in #SSL schema: one field per check,
// its default marked, so a repository's policy writes
// `#Checks: weak_key: "warning"` and an unknown check or severity is a CUE
// error at its position.
func CUEDefinition() []byte {
	var b strings.Builder
	b.WriteString("// #Checks sets the severity of each certificate hygiene check\n")
	b.WriteString("// (certcheck): \"error\" fails validation, \"warning\" is reported,\n")
	b.WriteString("// \"off\" is not checked. A repository's *.cue policy may tune any of them,\n")
	b.WriteString("// for example `#Checks: untrusted_root: \"error\"`.\n")
	b.WriteString("#Checks: {\n")
	// Every declaration of a definition in one package merges into it, so
	// a pattern, not closedness, refuses a misspelt check at its line.
	names := make([]string, len(defaults))
	for i, d := range defaults {
		names[i] = string(d.check)
	}
	fmt.Fprintf(&b, "\t[!~\"^(%s)$\"]: error(\"unknown check: `certops schema` lists them\")\n\n", strings.Join(names, "|"))
	for i, d := range defaults {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\t// %s: %s.\n", d.check, d.doc)
		alts := []string{}
		for _, s := range []Severity{SeverityError, SeverityWarning, SeverityOff} {
			if s == d.sev {
				alts = append(alts, fmt.Sprintf("*%q", s))
			} else {
				alts = append(alts, fmt.Sprintf("%q", s))
			}
		}
		fmt.Fprintf(&b, "\t%s: %s\n", d.check, strings.Join(alts, " | "))
	}
	b.WriteString("}\n")
	return []byte(b.String())
}
