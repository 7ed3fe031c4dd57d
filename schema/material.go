package schema

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// Values returns the bytes of a field value: the PEM text itself, or the
// resolved value of a secret reference. The reconciler supplies it.
type Values func(value string) ([]byte, error)

// Literal is the Values of an entity without secret references: it
// returns PEM text as is and refuses references.
func Literal(value string) ([]byte, error) {
	if IsReference(value) {
		return nil, fmt.Errorf("secret reference %s is not resolved here", value)
	}
	return []byte(value), nil
}

// Material parses the entity's chains, keys and client CA, with values
// resolving each field. Errors name the entity and field, never a value.
func (e *Entity) Material(values Values) (*Material, error) {
	m := &Material{}
	for i, ch := range e.Chains {
		field := "cert"
		if i > 0 {
			field = fmt.Sprintf("certs[%d]", i-1)
		}
		certPEM, err := values(ch.Cert)
		if err != nil {
			return nil, fmt.Errorf("entity %s: %s: %w", e.Name, field, err)
		}
		keyPEM, err := values(ch.Key)
		if err != nil {
			return nil, fmt.Errorf("entity %s: key of %s: %w", e.Name, field, err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// X509KeyPair's errors describe the PEM structure, not its bytes.
			return nil, fmt.Errorf("entity %s: %s: %w", e.Name, field, err)
		}
		m.Chains = append(m.Chains, c)
	}
	if e.ClientCA != "" {
		caPEM, err := values(e.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("entity %s: client.ca: %w", e.Name, err)
		}
		m.ClientCAs = x509.NewCertPool()
		if !m.ClientCAs.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("entity %s: client.ca: no certificate found", e.Name)
		}
	}
	return m, nil
}
