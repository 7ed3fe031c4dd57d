package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
