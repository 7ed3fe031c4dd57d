package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// The fleet through the binary (issue 12), on Debian's nats-server, which
// .ci/run installs.

const natsServerBin = "/usr/sbin/nats-server"

// natsServer is a nats-server process with JetStream.
type natsServer struct {
	tb     testing.TB
	name   string
	port   int
	conf   string
	cmd    *exec.Cmd
	done   chan struct{}
	logDir string
}

// url returns the server's client URL.
func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// startNATS writes a configuration for a server (clustered when
// clusterPorts has several entries, this one being clusterPorts[i]) and
// starts it.
func startNATS(tb testing.TB, dir, name string, port int, clusterPorts []int, i int) *natsServer {
	tb.Helper()
	if _, err := os.Stat(natsServerBin); err != nil {
		tb.Skipf("%s not installed (apt-get install nats-server)", natsServerBin)
	}
	conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q }\n", name, port, filepath.Join(dir, name))
	if len(clusterPorts) > 1 {
		var routes []string
		for j, p := range clusterPorts {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		conf += fmt.Sprintf("cluster { name: certops, listen: 127.0.0.1:%d, routes: [%s] }\n", clusterPorts[i], strings.Join(routes, ", "))
	}
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	s := &natsServer{tb: tb, name: name, port: port, conf: path, logDir: dir}
	s.start()
	tb.Cleanup(func() {
		s.kill()
		if tb.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			tb.Logf("nats-server %s log:\n%s", name, tail(string(b), 15))
		}
	})
	return s
}

func (s *natsServer) start() {
	s.tb.Helper()
	s.cmd = exec.Command(natsServerBin, "-c", s.conf, "-l", filepath.Join(s.logDir, s.name+".log"))
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	eventually(s.tb, 20*time.Second, "nats-server "+s.name+" listening", func() (bool, string) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
		}
		return err == nil, fmt.Sprint(err)
	})
}

func (s *natsServer) kill() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill()
		<-s.done
	}
}

// startCertops runs certops with args (the subcommand first) and the
// admin address given, and waits for /readyz like startDaemon.
func startCertops(tb testing.TB, admin string, args ...string) *daemon {
	tb.Helper()
	bin := requireBinary(tb)
	d := &daemon{tb: tb, logs: new(fixtures.SyncBuffer), done: make(chan struct{}), admin: admin}
	d.cmd = exec.Command(bin, append(args, "--log-format", "json")...)
	d.cmd.Env = daemonEnv(tb, nil)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		tb.Fatalf("start certops: %v", err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	tb.Cleanup(func() {
		d.kill()
		if tb.Failed() {
			tb.Logf("certops %s logs:\n%s", strings.Join(args, " "), tail(d.logs.String(), 40))
		}
	})
	if !d.waitReady(readyTimeout) {
		tb.Fatalf("certops %s exited before ready (%v):\n%s", args[0], d.err, tail(d.logs.String(), 40))
	}
	return d
}

// fleetKeys makes the three key files of DESIGN.md 9 with openssl, as the
// README says.
func fleetKeys(tb testing.TB, dir string) {
	tb.Helper()
	openssl := requireTool(tb, "openssl")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "ed25519", "-out", "signing.pem"},
		{"pkey", "-in", "signing.pem", "-pubout", "-out", "trusted.pem"},
		{"rand", "-base64", "-out", "data.key", "32"},
	} {
		cmd := exec.Command(openssl, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// servedSerial returns the serial of the leaf served for sni at addr.
func servedSerial(addr, sni string) (string, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{ServerName: sni, InsecureSkipVerify: true}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// TestFleetReadme runs the README's "Running a fleet" section: one NATS
// server, one publisher, two nodes, and `certops fleet wait` after a
// commit, then `certops fleet status`.
func TestFleetReadme(t *testing.T) {
	dir := t.TempDir()
	fleetKeys(t, dir)
	ns := startNATS(t, dir, "nats", freePort(t), nil, 0)
	ca := fixtures.NewRootCA(t, "fleet CA")
	leaf := ca.Server(t, "shop.example.com")
	repo := fixtures.NewGitRepo(t)
	repo.Commit(t, "shop", map[string]string{"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{leaf}})})

	pubAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pub := startCertops(t, pubAdmin, "publish", "--source", repo.FileURL(), "--nats", ns.url(), "--fleet", "demo",
		"--signing-key", filepath.Join(dir, "signing.pem"), "--data-key-file", filepath.Join(dir, "data.key"),
		"--admin", pubAdmin, "--data-dir", filepath.Join(dir, "publisher"), "--interval", "1s")
	var nodes []*daemon
	for _, name := range []string{"edge-1", "edge-2"} {
		nodes = append(nodes, runDaemon(t, daemonConfig{args: []string{"--source", ns.url() + "/demo",
			"--trusted-key", filepath.Join(dir, "trusted.pem"), "--data-key-file", filepath.Join(dir, "data.key"),
			"--node", name, "--data-dir", filepath.Join(dir, name)}}))
	}

	leaf2 := ca.Server(t, "shop.example.com")
	rev := repo.Commit(t, "rotate shop", map[string]string{"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{leaf2}})})
	wait := certops(t, dir, nil, "fleet", "wait", "--nats", ns.url(), "--fleet", "demo", "--revision", rev[:8], "--timeout", "60s")
	if wait.code != 0 {
		t.Fatalf("fleet wait = exit %d: %s%s", wait.code, wait.stdout, wait.stderr)
	}
	if !strings.Contains(wait.stdout, "served and verified on 2 of 2 nodes") {
		t.Errorf("fleet wait printed %q, want 2 of 2 nodes", wait.stdout)
	}
	for _, n := range nodes {
		if got, err := servedSerial(n.listen, "shop.example.com"); err != nil || got != leaf2.Cert.SerialNumber.Text(16) {
			t.Errorf("node %s serves serial %s (%v), want the rotated %s", n.listen, got, err, leaf2.Cert.SerialNumber.Text(16))
		}
		code, body := n.get("/api/v1/status")
		var st struct {
			Verified   bool              `json:"verified"`
			Mismatches []json.RawMessage `json:"mismatches"`
			Fleet      struct {
				Name              string `json:"name"`
				PublisherRevision string `json:"publisher_revision"`
			} `json:"fleet"`
		}
		if code != 200 || json.Unmarshal(body, &st) != nil || !st.Verified || st.Mismatches == nil || st.Fleet.Name != "demo" || st.Fleet.PublisherRevision != rev {
			t.Errorf("node status = %d %s, want verified, no mismatches, fleet demo at %s", code, body, rev)
		}
	}
	status := certops(t, dir, nil, "fleet", "status", "--nats", ns.url(), "--fleet", "demo", "--format", "json")
	var st struct {
		Fleet string `json:"fleet"`
		Head  struct {
			Revision string `json:"revision"`
		} `json:"head"`
		Converged, Total int
	}
	if status.code != 0 || json.Unmarshal([]byte(status.stdout), &st) != nil || st.Head.Revision != rev || st.Converged != 2 || st.Total != 2 {
		t.Errorf("fleet status --format json = exit %d %s, want head %s, 2 of 2 converged", status.code, status.stdout, rev)
	}
	text := certops(t, dir, nil, "fleet", "status", "--nats", ns.url(), "--fleet", "demo")
	if text.code != 0 || !strings.Contains(text.stdout, "converged: 2 of 2 live nodes") || !strings.Contains(text.stdout, "edge-1") {
		t.Errorf("fleet status = exit %d %q, want both nodes converged", text.code, text.stdout)
	}
	code, body := httpDo(t, "GET", "http://"+pubAdmin+"/api/v1/status", nil, nil)
	if code != 200 || !strings.Contains(string(body), `"role": "leader"`) || !strings.Contains(string(body), rev) {
		t.Errorf("publisher status = %d %s, want role leader and published %s", code, body, rev)
	}
	// Nothing secret in any output.
	keyPEM := string(leaf2.KeyPEM)
	for name, out := range map[string]string{"publisher and node logs": pub.logs.String() + nodes[0].logs.String() + nodes[1].logs.String(), "fleet status": status.stdout + text.stdout, "publisher status": string(body)} {
		for line := range strings.SplitSeq(keyPEM, "\n") {
			if len(line) == 64 && strings.Contains(out, line) {
				t.Errorf("%s contains private-key material", name)
				break
			}
		}
	}
}
