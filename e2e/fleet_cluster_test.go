package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"certops/fixtures"
)

// TestFleetCluster: a 3-server JetStream cluster on loopback, two
// publishers, three nodes, and the faults of issue 12: the leader
// publisher killed (the standby publishes the next commit), one NATS
// server killed (publishing and serving go on), every NATS server stopped
// (nodes keep serving, a node restarted meanwhile serves from its data
// dir, all converge when NATS is back).
func TestFleetCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-server cluster and eight processes: not with -short")
	}
	dir := t.TempDir()
	fleetKeys(t, dir)
	ports := []int{freePort(t), freePort(t), freePort(t)}
	cports := []int{freePort(t), freePort(t), freePort(t)}
	var servers []*natsServer
	var urls []string
	for i := range ports {
		servers = append(servers, startNATS(t, dir, fmt.Sprintf("n%d", i+1), ports[i], cports, i))
		urls = append(urls, servers[i].url())
	}
	all := strings.Join(urls, ",")
	var hosts []string
	for _, u := range urls {
		hosts = append(hosts, strings.TrimPrefix(u, "nats://"))
	}
	nodeSource := "nats://" + strings.Join(hosts, ",") + "/prod"

	ca := fixtures.NewRootCA(t, "fleet CA")
	repo := fixtures.NewGitRepo(t)
	commit := func(msg string) (string, *fixtures.Leaf) {
		leaf := ca.Server(t, "shop.example.com")
		rev := repo.Commit(t, msg, map[string]string{
			"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{leaf}}),
			"api.yaml":  fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.example.com", "*.api.example.com"}, Chains: []*fixtures.Leaf{ca.Server(t, "api.example.com", "*.api.example.com")}}),
		})
		return rev, leaf
	}
	rev, leaf := commit("first")

	pubs := map[string]*daemon{}
	for _, id := range []string{"pub-a", "pub-b"} {
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		pubs[id] = startCertops(t, admin, "publish", "--source", repo.FileURL(), "--nats", all, "--fleet", "prod",
			"--signing-key", filepath.Join(dir, "signing.pem"), "--data-key-file", filepath.Join(dir, "data.key"),
			"--admin", admin, "--data-dir", filepath.Join(dir, id), "--interval", "1s", "--publisher-id", id,
			"--replicas", "3", "--lease", "5s")
	}
	nodeArgs := func(name string) []string {
		return []string{"--source", nodeSource, "--trusted-key", filepath.Join(dir, "trusted.pem"),
			"--data-key-file", filepath.Join(dir, "data.key"), "--node", name, "--data-dir", filepath.Join(dir, name)}
	}
	nodes := map[string]*daemon{}
	for _, name := range []string{"edge-1", "edge-2", "edge-3"} {
		// Ready once the first manifest is published: a JetStream cluster
		// on a busy machine takes a while to create replicated buckets.
		nodes[name] = runDaemon(t, daemonConfig{args: nodeArgs(name), readyTimeout: 5 * time.Minute})
	}
	waitFleet := func(rev, what string) {
		t.Helper()
		w := certops(t, dir, nil, "fleet", "wait", "--nats", all, "--fleet", "prod", "--revision", rev, "--timeout", "3m")
		if w.code != 0 {
			t.Fatalf("%s: fleet wait %s = exit %d\n%s%s", what, rev[:8], w.code, w.stdout, w.stderr)
		}
	}
	serves := func(what string, leaf *fixtures.Leaf) {
		t.Helper()
		for name, n := range nodes {
			if got, err := servedSerial(n.listen, "shop.example.com"); err != nil || got != leaf.Cert.SerialNumber.Text(16) {
				t.Errorf("%s: %s serves %s (%v), want serial %s", what, name, got, err, leaf.Cert.SerialNumber.Text(16))
			}
		}
	}
	waitFleet(rev, "start")
	serves("start", leaf)

	// Kill the leader publisher: the standby publishes the next commit.
	leader := ""
	eventually(t, 30*time.Second, "a leader publisher", func() (bool, string) {
		for id, p := range pubs {
			_, body := p.get("/api/v1/status")
			var st struct{ Role string }
			json.Unmarshal(body, &st)
			if st.Role == "leader" {
				leader = id
				return true, ""
			}
		}
		return false, "no leader"
	})
	pubs[leader].kill()
	rev, leaf = commit("after the leader died")
	waitFleet(rev, "leader killed")
	serves("leader killed", leaf)

	// Kill one NATS server: publishing and serving go on.
	servers[0].kill()
	rev, leaf = commit("one NATS server down")
	waitFleet(rev, "one NATS server killed")
	serves("one NATS server killed", leaf)

	// Stop every NATS server: nodes keep serving; a node restarted
	// meanwhile serves from its data dir.
	for _, s := range servers {
		s.kill()
	}
	time.Sleep(time.Second)
	serves("NATS down", leaf)
	nodes["edge-3"].cmd.Process.Signal(syscall.SIGTERM)
	<-nodes["edge-3"].done
	nodes["edge-3"] = runDaemon(t, daemonConfig{args: nodeArgs("edge-3")})
	serves("NATS down, edge-3 restarted", leaf)

	// NATS comes back: everything converges on the next commit.
	for _, s := range servers {
		s.start()
	}
	rev, leaf = commit("NATS is back")
	waitFleet(rev, "NATS back")
	serves("NATS back", leaf)
}
