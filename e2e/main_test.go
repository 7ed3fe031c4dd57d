package e2e

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	// certopsBin is the path of the binary built once by TestMain.
	certopsBin string
	// workDir is a folder that lives as long as the test binary, for
	// material shared by several tests or benchmarks.
	workDir string
)

// TestMain builds the certops binary from the module root into a temporary
// folder and runs the suite against it; E2E_CERTOPS_BIN names a prebuilt
// binary to test instead. Under -short nothing is built and every test
// skips itself through requireBinary.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "certops-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "certops")
		if runtime.GOOS == "windows" {
			bin += ".exe"
		}
		if os.Getenv("E2E_CERTOPS_BIN") == "" {
			cmd := exec.Command("go", "build", "-o", bin, ".")
			cmd.Dir = ".." // the module root: package main
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: go build:", err)
				return 1
			}
		}
		certopsBin, workDir = bin, dir
		if prebuilt := os.Getenv("E2E_CERTOPS_BIN"); prebuilt != "" {
			certopsBin = prebuilt
		}
		return m.Run()
	}()
	os.Exit(code)
}

// requireBinary skips the test under -short and otherwise returns the path
// of the certops binary.
func requireBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("e2e: skipped under -short")
	}
	if certopsBin == "" {
		tb.Fatal("e2e: certops binary not built")
	}
	if os.Getenv("E2E_CERTOPS_BIN") == "" {
		noteSources.Do(func() { noteModuleFiles("..") })
	}
	return certopsBin
}

// requireTool skips nothing: a missing tool the suite depends on is a
// failure of the machine, which .ci/run installs.
func requireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("e2e: %s not found on PATH (.ci/run installs it): %v", name, err)
	}
	return p
}

// noteSources runs noteModuleFiles once, from a test: go test records the
// files a test process opens only while tests run, not in TestMain.
var noteSources sync.Once

// noteModuleFiles opens every file of the module below root (but the
// folders git and tests keep to themselves). go test caches a package's
// result by the files its test process opened, and this suite tests a
// binary built by another process: without this, a change to the binary's
// source alone would be answered from the cache.
func noteModuleFiles(root string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if f, err := os.Open(p); err == nil {
			f.Close()
		}
		return nil
	})
}
