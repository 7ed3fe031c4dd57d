package examples

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// basicEntity is one entity of the basic example, as both the checked-in
// files (gen.go) and the in-memory repository of `certops run` (NewDemo)
// issue it: one list, so the two cannot drift.
type basicEntity struct {
	file   string // below basic/
	name   string
	snis   []string
	chains []basicChain // cert/key first, then certs[i]/keys[i]
	labels map[string]string
}

// basicChain is one chain of an entity: a leaf of the demo CA.
type basicChain struct {
	rsa   bool     // an RSA 2048 key, else ECDSA P-256
	names []string // the SANs; the first is also the common name
}

// basicEntities are the entities of the basic example: an exact SNI, a
// one-label wildcard, a dual RSA + ECDSA entity (RSA written first, to
// show that the gateway prefers ECDSA whatever the order) and the default
// certificate. Every name lies in the name constraints of the demo CA
// (gen.go).
var basicEntities = []basicEntity{
	{
		file:   "shop.yaml",
		name:   "shop-example-com",
		snis:   []string{"shop.example.com"},
		chains: []basicChain{{names: []string{"shop.example.com"}}},
		labels: map[string]string{"team": "storefront"},
	},
	{
		file:   "wildcard.yaml",
		name:   "wildcard-example-com",
		snis:   []string{"*.example.com"},
		chains: []basicChain{{names: []string{"*.example.com"}}},
		labels: map[string]string{"team": "platform"},
	},
	{
		file:   "api-dual.yaml",
		name:   "api-example-net",
		snis:   []string{"api.example.net"},
		chains: []basicChain{{rsa: true, names: []string{"api.example.net"}}, {names: []string{"api.example.net"}}},
		labels: map[string]string{"team": "api"},
	},
	{
		file:   "default.yaml",
		name:   "default",
		snis:   []string{"*"},
		chains: []basicChain{{names: []string{"default.certops.invalid"}}},
		labels: map[string]string{"team": "platform"},
	},
}

// IssueOptions say how IssueBasic issues the leaves of the basic example.
type IssueOptions struct {
	// CA and Key issue every leaf. Required.
	CA  *x509.Certificate
	Key crypto.Signer
	// NotBefore and NotAfter bound every leaf. Required.
	NotBefore, NotAfter time.Time
	// CRLURL, when set, is the CRL distribution point of every leaf.
	CRLURL string
	// Header is written at the top of every file (YAML comments).
	Header string
}

// IssueBasic returns the entity files of the basic example (file name
// below basic/ -> content), every chain with a fresh key and a leaf issued
// by opts.CA. It writes nothing anywhere; gen.go writes its result to
// examples/basic, NewDemo keeps it in memory.
func IssueBasic(opts IssueOptions) (map[string][]byte, error) {
	if opts.CA == nil || opts.Key == nil {
		return nil, errors.New("issue the basic example: no CA")
	}
	if !opts.NotAfter.After(opts.NotBefore) {
		return nil, fmt.Errorf("issue the basic example: not-after %s is not after not-before %s", opts.NotAfter, opts.NotBefore)
	}
	files := make(map[string][]byte, len(basicEntities))
	for _, e := range basicEntities {
		var certs, keys []string
		for _, c := range e.chains {
			cert, key, err := issueLeaf(opts, c)
			if err != nil {
				return nil, fmt.Errorf("issue %s of the basic example: %w", e.name, err)
			}
			certs, keys = append(certs, cert), append(keys, key)
		}
		files[e.file] = []byte(opts.Header + entityYAML(e, certs, keys))
	}
	return files, nil
}

var serialLimit = new(big.Int).Lsh(big.NewInt(1), 127)

// issueLeaf returns the PEM of a new server leaf for c and of its PKCS#8
// key.
func issueLeaf(opts IssueOptions, c basicChain) (certPEM, keyPEM string, err error) {
	var key crypto.Signer
	usage := x509.KeyUsageDigitalSignature
	if c.rsa {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		usage |= x509.KeyUsageKeyEncipherment
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return "", "", fmt.Errorf("generate a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return "", "", fmt.Errorf("serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: c.names[0]},
		DNSNames:     c.names,
		NotBefore:    opts.NotBefore,
		NotAfter:     opts.NotAfter,
		KeyUsage:     usage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if opts.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{opts.CRLURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, opts.CA, key.Public(), opts.Key)
	if err != nil {
		return "", "", fmt.Errorf("sign the leaf for %s: %w", c.names[0], err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encode the key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), nil
}

// entityYAML writes e in the native form of DESIGN.md 2, its PEM blocks as
// literal block scalars.
func entityYAML(e basicEntity, certs, keys []string) string {
	var b strings.Builder
	b.WriteString("name: " + e.name + "\n")
	b.WriteString("snis:\n")
	for _, s := range e.snis {
		b.WriteString("  - " + strconv.Quote(s) + "\n")
	}
	b.WriteString("cert: |\n" + indent(certs[0], "  "))
	b.WriteString("key: |\n" + indent(keys[0], "  "))
	if len(certs) > 1 {
		b.WriteString("certs:\n")
		for _, c := range certs[1:] {
			b.WriteString("  - |\n" + indent(c, "    "))
		}
		b.WriteString("keys:\n")
		for _, k := range keys[1:] {
			b.WriteString("  - |\n" + indent(k, "    "))
		}
	}
	if len(e.labels) > 0 {
		b.WriteString("labels:\n")
		for _, k := range slices.Sorted(maps.Keys(e.labels)) {
			b.WriteString("  " + k + ": " + strconv.Quote(e.labels[k]) + "\n")
		}
	}
	return b.String()
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}
