package schema_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"certops/schema"

	"github.com/google/go-cmp/cmp"
)

// TestJSONReportShape pins the JSON report byte for byte: problems are
// schema.Error in its JSON form, flat, with unknown parts left out.
func TestJSONReportShape(t *testing.T) {
	res := &schema.Result{Files: 1, Ignored: []string{"notes.txt"}, Problems: schema.ErrorList{
		{Pos: schema.Pos{File: "a,b.yaml", Line: 3, Col: 7}, Field: "cert", Msg: "100% wrong\nreally"},
		{Pos: schema.Pos{File: "c.yaml"}, Msg: "expires soon", Severity: schema.SeverityWarning},
	}}
	var got bytes.Buffer
	if err := schema.WriteReport(&got, res, schema.FormatJSON, schema.ReportOptions{Dir: "certs", Verbose: true}); err != nil {
		t.Fatal(err)
	}
	want := `{
  "valid": false,
  "entities": 0,
  "files": 1,
  "errors": 1,
  "warnings": 1,
  "problems": [
    {
      "severity": "error",
      "file": "certs/a,b.yaml",
      "line": 3,
      "column": 7,
      "field": "cert",
      "message": "100% wrong\nreally"
    },
    {
      "severity": "warning",
      "file": "certs/c.yaml",
      "message": "expires soon"
    }
  ],
  "ignored": [
    "certs/notes.txt"
  ]
}
`
	if diff := cmp.Diff(want, got.String()); diff != "" {
		t.Errorf("JSON report mismatch (-want +got):\n%s", diff)
	}
	if res.Problems[0].Pos.File != "a,b.yaml" {
		t.Errorf("WriteReport changed the problem's file to %q", res.Problems[0].Pos.File)
	}
}

// TestErrorJSONRoundTrip checks that an Error survives its JSON form, as
// the admin API's clients read it back.
func TestErrorJSONRoundTrip(t *testing.T) {
	for _, e := range []schema.Error{
		{Pos: schema.Pos{File: "certs/shop.yaml", Line: 3, Col: 7}, Field: "snis[0]", Msg: "bad", Severity: schema.SeverityWarning},
		{Msg: "no file at all"},
	} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back schema.Error
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if back != e {
			t.Errorf("round trip of %s = %#v, want %#v", b, back, e)
		}
	}
	var bad schema.Error
	if err := json.Unmarshal([]byte(`{"severity":"fatal","message":"x"}`), &bad); err == nil {
		t.Errorf("Unmarshal accepted severity fatal")
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		e    schema.Error
		want string
	}{
		{"full", schema.Error{Pos: schema.Pos{File: "a.yaml", Line: 2, Col: 3}, Field: "key", Msg: "m"}, "a.yaml:2:3: key: m"},
		{"warning", schema.Error{Pos: schema.Pos{File: "a.yaml", Line: 2}, Msg: "m", Severity: schema.SeverityWarning}, "a.yaml:2: warning: m"},
		{"no file", schema.Error{Field: "key", Msg: "m"}, "key: m"},
		{"message only", schema.Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.String(); got != tt.want {
				t.Errorf("Error.String() = %q, want %q", got, tt.want)
			}
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error.Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
