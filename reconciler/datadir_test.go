package reconciler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if s, err := loadState(dir); s != nil || err != nil {
		t.Fatalf("loadState(empty) = %+v, %v; want nil, nil", s, err)
	}
	want := savedState{Source: "https://git.example.com/r.git", Revision: "abc", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for range 2 {
		if err := saveState(dir, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := loadState(dir)
	if err != nil || *got != want {
		t.Errorf("loadState = %+v, %v; want %+v", got, err, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only %s (no temporary files left)", len(entries), stateFile)
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o600)
	if _, err := loadState(dir); err == nil {
		t.Error("loadState(corrupt) = nil error")
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/lib/x")
	if got := DefaultDataDir(); got != "/var/lib/x/certops" {
		t.Errorf("DefaultDataDir() = %q with XDG_STATE_HOME", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	if got := DefaultDataDir(); !strings.HasSuffix(got, filepath.Join(".local", "state", "certops")) {
		t.Errorf("DefaultDataDir() = %q without XDG_STATE_HOME", got)
	}
}
