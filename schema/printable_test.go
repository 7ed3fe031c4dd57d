package schema

import "testing"

func TestPrintable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "certs/shop.yaml", "certs/shop.yaml"},
		{"spaces and unicode", "certs/mon café.yaml", "certs/mon café.yaml"},
		{"newline forges a line", "a\n::error file=x::forged.yaml", `"a\n::error file=x::forged.yaml"`},
		{"ANSI escape", "\x1b[31mred.yaml", `"\x1b[31mred.yaml"`},
		{"tab", "a\tb.yaml", `"a\tb.yaml"`},
		{"invalid UTF-8", "a\xffb.yaml", `"a\xffb.yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Printable(tt.in); got != tt.want {
				t.Errorf("Printable(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	if got := (Pos{File: "a\nb.yaml", Line: 3, Col: 1}).String(); got != `"a\nb.yaml":3:1` {
		t.Errorf("Pos.String() = %s, want the file name escaped", got)
	}
}
