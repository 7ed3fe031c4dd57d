package secrets

import (
	"strings"
	"testing"
)

func TestJSONField(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		path  []string
		want  string
		error string
	}{
		{"string", `{"key":"v"}`, []string{"key"}, "v", ""},
		{"nested", `{"a":{"b":"v"}}`, []string{"a", "b"}, "v", ""},
		{"number stays exact", `{"n":12345678901234567890}`, []string{"n"}, "12345678901234567890", ""},
		{"object as JSON", `{"o":{"x":1}}`, []string{"o"}, `{"x":1}`, ""},
		{"null", `{"k":null}`, []string{"k"}, "", "field k is null"},
		{"missing", `{"k":"v"}`, []string{"x"}, "", "field x: not found"},
		{"not an object", `["secret-in-array"]`, []string{"k"}, "", "the value is not a JSON object"},
		{"not JSON", `-----BEGIN PRIVATE KEY-----`, []string{"k"}, "", "value is not JSON"},
		{"descend into string", `{"a":"secret-string"}`, []string{"a", "b"}, "", "field a is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jsonField([]byte(tt.data), tt.path)
			if tt.error == "" {
				if err != nil || string(got) != tt.want {
					t.Errorf("jsonField(%q, %q) = %q, %v, want %q", tt.data, tt.path, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.error) {
				t.Errorf("jsonField(%q, %q) = %v, want an error containing %q", tt.data, tt.path, err, tt.error)
			}
			for _, secret := range []string{"PRIVATE", "secret-in-array", "secret-string"} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes the value", err)
				}
			}
		})
	}
}

// FuzzJSONField: any document and field either resolve or fail with an
// error that does not quote the document.
func FuzzJSONField(f *testing.F) {
	f.Add([]byte(`{"key":"value"}`), "key")
	f.Add([]byte(`{"a":{"b":[1,2]}}`), "a")
	f.Add([]byte(`not json at all, a PEM perhaps`), "key")
	f.Add([]byte(`{"k":"\u0000"}`), "k")
	f.Fuzz(func(t *testing.T, data []byte, field string) {
		_, err := jsonField(data, []string{field})
		if err == nil {
			return
		}
		// Long enough not to match the fixed words of a message by chance.
		if len(data) >= 16 && !strings.Contains(field, string(data)) && strings.Contains(err.Error(), string(data)) {
			t.Errorf("jsonField error %q quotes the document", err)
		}
	})
}

// FuzzResolve: any string given to Resolve yields a value or an error,
// never a panic, and a non-reference is never quoted.
func FuzzResolve(f *testing.F) {
	f.Add("$env://K")
	f.Add("$env://J/field")
	f.Add("$ENV://J/missing")
	f.Add("$secret://nope/x")
	f.Add("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
	c, err := New(Options{Getenv: mapEnv(map[string]string{"K": "v", "J": `{"field":"x"}`})})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if strings.HasPrefix(strings.ToLower(ref), "$secret://") {
			return // would reach out to a store
		}
		_, err := c.Resolve(t.Context(), ref)
		if err != nil && len(ref) >= 16 && !strings.HasPrefix(strings.ToLower(ref), "$env://") && strings.Contains(err.Error(), ref) {
			t.Errorf("Resolve error %q quotes a value that is not a reference", err)
		}
	})
}
