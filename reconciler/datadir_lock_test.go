package reconciler

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := LockDataDir(dir)
	if err != nil {
		t.Fatalf("LockDataDir(%s) = %v", dir, err)
	}
	_, err = LockDataDir(dir)
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) || inUse.PID != strconv.Itoa(os.Getpid()) {
		t.Fatalf("second LockDataDir(%s) = %v, want a *DataDirInUseError naming pid %d", dir, err, os.Getpid())
	}
	if !strings.Contains(err.Error(), "in use by another certops daemon") {
		t.Errorf("error %q does not say who holds the data dir", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDataDir(dir)
	if err != nil {
		t.Fatalf("LockDataDir after Close = %v", err)
	}
	l2.Close()
}
