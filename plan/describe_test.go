package plan

import (
	"testing"
	"testing/fstest"

	"certops/fixtures"
)

func TestDescribeTree(t *testing.T) {
	ca := fixtures.NewRootCA(t, "describe CA")
	shop := fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{ca.Server(t, "shop.example.com")}})
	fsys := fstest.MapFS{
		"tls/shop.yaml": {Data: []byte(shop)},
		"bad/x.yaml":    {Data: []byte("name: x\ncert: 42\n")},
	}
	tests := []struct {
		name         string
		path         string
		wantEntities int
		wantProblems bool
		wantErr      bool
	}{
		{"folder with an entity", "tls", 1, false, false},
		{"folder missing at this revision: no entities", "certs", 0, false, false},
		{"invalid folder: problems, no entities", "bad", 0, true, false},
		{"missing nested folder", "tls/prod", 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			infos, problems, err := DescribeTree(fsys, tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("DescribeTree(%q) error = %v, want error %v", tt.path, err, tt.wantErr)
			}
			if len(infos) != tt.wantEntities || (len(problems) > 0) != tt.wantProblems {
				t.Errorf("DescribeTree(%q) = %d entities, problems %v; want %d entities, problems %v",
					tt.path, len(infos), problems, tt.wantEntities, tt.wantProblems)
			}
			if infos == nil && !tt.wantProblems {
				t.Errorf("DescribeTree(%q) entities = nil, want an empty list (a plan side)", tt.path)
			}
		})
	}
}
