// Package e2e proves certops the way a user or an auditor would: its tests
// build the certops binary once, run it as a separate process and drive it
// only through its command line, files, TLS and HTTP, with real clients
// (openssl s_client, curl) and real git servers (git daemon, git
// http-backend). The package imports nothing from certops.
//
// The suite is skipped under -short. It generates all of its key material at
// run time with a small PKI of its own, so the leak scan knows exactly which
// secrets must never appear in any output.
package e2e
