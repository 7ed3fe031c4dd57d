package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"certops/fixtures"
)

// debianServer is the nats-server that e2e and CI run (Debian's 2.9.10):
// every integration test runs against it too, so every JetStream feature
// used is proven to exist in 2.9.
const debianServer = "/usr/sbin/nats-server"

// natsServer is a running NATS server with JetStream.
type natsServer struct {
	URL  string
	pid  int // of a nats-server process; 0 when embedded
	stop func()
}

// embeddedServer starts an in-process nats-server with JetStream on a
// temporary store.
func embeddedServer(tb testing.TB) *natsServer {
	tb.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(),
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("embedded nats-server did not start")
	}
	ns := &natsServer{URL: s.ClientURL(), stop: func() { s.Shutdown(); s.WaitForShutdown() }}
	tb.Cleanup(ns.stop)
	return ns
}

// binaryServer starts Debian's nats-server binary on a random loopback
// port with a temporary store; the test is skipped when it is not
// installed (.ci/run installs it).
func binaryServer(tb testing.TB) *natsServer {
	tb.Helper()
	if _, err := os.Stat(debianServer); err != nil {
		tb.Skipf("%s not installed (apt-get install nats-server)", debianServer)
	}
	dir := tb.TempDir()
	cmd := exec.Command(debianServer, "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", filepath.Join(dir, "store"),
		"--ports_file_dir", dir, "-l", filepath.Join(dir, "server.log"))
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	tb.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("nats-server_%d.ports", cmd.Process.Pid)))
		if err == nil {
			var p struct {
				Nats []string `json:"nats"`
			}
			if json.Unmarshal(b, &p) == nil && len(p.Nats) > 0 {
				return &natsServer{URL: p.Nats[0], pid: cmd.Process.Pid, stop: stop}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	tb.Fatalf("nats-server did not start: %s", log)
	return nil
}

// servers are the two engines every integration test runs against.
var servers = []struct {
	name  string
	start func(testing.TB) *natsServer
}{
	{"embedded", embeddedServer},
	{"debian-2.9", binaryServer},
}

// forEachServer runs f against each engine.
func forEachServer(t *testing.T, f func(t *testing.T, ns *natsServer)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) { f(t, s.start(t)) })
	}
}

// openFleet connects to ns and opens fleet name, closing it at cleanup.
func openFleet(tb testing.TB, ns *natsServer, name string, opts Options) *Fleet {
	tb.Helper()
	c, err := Connect(ConnOptions{URLs: []string{ns.URL}, Name: tb.Name()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	f, err := Open(c, name, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// testKeys are a signing key, its trusted half and a data key.
type testKeys struct {
	sign *SigningKey
	dk   *DataKey
	raw  []byte // the data key
}

func newTestKeys(tb testing.TB) testKeys {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	dk, err := NewDataKey(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return testKeys{sign: NewSigningKey(priv), dk: dk, raw: raw}
}

// testEntity is a literal-key entity for name, and its key PEM.
func testEntity(tb testing.TB, ca *fixtures.CA, name string) (Entity, *fixtures.Leaf) {
	tb.Helper()
	leaf := ca.Server(tb, name+".example.test")
	return Entity{File: name + ".yaml", Doc: Document{
		Name: name, SNIs: []string{name + ".example.test"},
		Cert: string(leaf.ChainPEM), Key: string(leaf.KeyPEM),
	}}, leaf
}

// refEntity is an entity whose key is a secret reference.
func refEntity(tb testing.TB, ca *fixtures.CA, name string) Entity {
	tb.Helper()
	leaf := ca.Server(tb, name+".example.test")
	return Entity{File: name + ".yaml", Doc: Document{
		Name: name, SNIs: []string{name + ".example.test"},
		Cert: string(leaf.ChainPEM), Key: "$env://KEY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")),
	}}
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
