package secrets

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	Register(Registration{Name: "env", Open: func(_ context.Context, cfg ProviderConfig) (Provider, error) {
		return envProvider{getenv: cfg.Getenv}, nil
	}})
}

// envProvider resolves $env://NAME[/field] from the process environment
// (Options.Getenv).
type envProvider struct {
	getenv func(string) (string, bool)
}

// Fetch reads NAME or NAME/field.
func (p envProvider) Fetch(ctx context.Context, path string) ([]byte, error) {
	name, field, hasField := strings.Cut(path, "/")
	b, err := ReadOnce(ctx, "env:"+name, func() ([]byte, error) {
		v, ok := p.getenv(name)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set: %w", name, ErrNotFound)
		}
		return []byte(v), nil
	})
	if err != nil {
		return nil, err
	}
	v := string(b)
	if v == "" {
		return nil, fmt.Errorf("environment variable %s is empty", name)
	}
	if !hasField {
		return []byte(v), nil
	}
	b, err = jsonField(b, []string{field})
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return b, nil
}

// Locate makes the fields of one variable one secret.
func (envProvider) Locate(path string) Location {
	name, _, _ := strings.Cut(path, "/")
	return Location{Store: "env", Secret: name}
}
