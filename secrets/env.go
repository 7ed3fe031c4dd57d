package secrets

import (
	"context"
	"fmt"
	"strings"
)

// envProvider resolves $env://NAME[/field] from the process environment
// (Options.Getenv).
type envProvider struct {
	getenv func(string) (string, bool)
}

func (p envProvider) fetch(ctx context.Context, path string) ([]byte, error) {
	name, field, hasField := strings.Cut(path, "/")
	b, err := memoized(ctx, "env:"+name, func() ([]byte, error) {
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
