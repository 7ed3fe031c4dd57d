package sni_test

import (
	"errors"
	"fmt"
	"go/build"
	"strings"
	"testing"

	"certops/sni"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{"exact", "shop.example.com", "shop.example.com", ""},
		{"folded", "Shop.Example.COM.", "shop.example.com", ""},
		{"default", "*", "*", ""},
		{"wildcard", "*.Example.com", "*.example.com", ""},
		{"a-label", "xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"single label", "localhost", "localhost", ""},
		{"empty", "", "", "empty server name"},
		{"only a dot", ".", "", "empty server name"},
		{"wildcard over a TLD", "*.com", "", `not "*.com"`},
		{"wildcard inside", "a.*.example.com", "", "whole leftmost label"},
		{"partial wildcard", "*a.example.com", "", "whole leftmost label"},
		{"u-label", "bücher.example", "", "A-label"},
		{"empty label", "a..b", "", "empty label"},
		{"space", "a b.example", "", "white space"},
		{"underscore", "_acme.example.com", "", "underscore"},
		{"slash", "a/b.example", "", "letters, digits and hyphens"},
		{"hyphen", "-a.example", "", "hyphen"},
		{"ipv4", "10.0.0.1", "", "IP address"},
		{"ipv6", "[::1]", "", "IP address"},
		{"too long", strings.Repeat("a.", 127) + "a", "", "longer than 253"},
		{"long label", strings.Repeat("a", 64) + ".example", "", "longer than 63"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sni.Normalize(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("Normalize(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Normalize(%q) = %q, %v, want an error containing %q", tt.in, got, err, tt.wantErr)
			}
		})
	}
	if _, err := sni.Normalize("bücher.example"); !errors.Is(err, sni.ErrNotASCII) {
		t.Errorf("Normalize(u-label) = %v, want ErrNotASCII", err)
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"shop.example.com", "shop.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", "*.example.com", true},
		{"*.example.com", "*.a.example.com", false},
		{"a.example.com", "*.example.com", false},
		{"*.example.com", ".example.com", false},
		{"shop.example.com", "shop.example.org", false},
	}
	for _, tt := range tests {
		if got := sni.Covers(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestParent(t *testing.T) {
	tests := []struct{ name, want string }{
		{"a.example.com", "example.com"},
		{"example", ""},
		{".example", ""},
		{"example.", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := sni.Parent(tt.name); got != tt.want {
			t.Errorf("Parent(%q) = %q, want %q", tt.name, got, tt.want)
		}
		if got := string(sni.Parent([]byte(tt.name))); got != tt.want {
			t.Errorf("Parent([]byte(%q)) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFoldDoesNotAllocate(t *testing.T) {
	var buf [sni.MaxLen + 1]byte
	name := "Shop.Example.COM."
	allocs := testing.AllocsPerRun(100, func() {
		b, ok := sni.AppendFold(buf[:0], name)
		if !ok || string(b) != "shop.example.com" {
			t.Fatalf("AppendFold(%q) = %q, %v", name, b, ok)
		}
		_ = sni.Parent(b)
	})
	if allocs != 0 {
		t.Errorf("AppendFold and Parent allocate %v times, want 0", allocs)
	}
	if _, ok := sni.AppendFold(buf[:0], strings.Repeat("a", sni.MaxLen+1)); ok {
		t.Errorf("AppendFold accepted a name longer than MaxLen")
	}
	if got := sni.Fold("Shop.Example.com."); got != "shop.example.com" {
		t.Errorf("Fold = %q", got)
	}
}

// TestStandardLibraryOnly keeps the package importable by the gateway,
// which uses the standard library only.
func TestStandardLibraryOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(strings.Split(imp, "/")[0], ".") || strings.HasPrefix(imp, "certops") {
			t.Errorf("package sni imports %s; it must use the standard library only", imp)
		}
	}
}

func ExampleNormalize() {
	for _, name := range []string{"Shop.Example.com.", "*.com"} {
		n, err := sni.Normalize(name)
		fmt.Println(n, err)
	}
	// Output:
	// shop.example.com <nil>
	//  a wildcard must stand for one label below a registered name, as in "*.example.com", not "*.com"
}

func ExampleCovers() {
	fmt.Println(sni.Covers("*.example.com", "shop.example.com"), sni.Covers("*.example.com", "example.com"))
	// Output: true false
}
