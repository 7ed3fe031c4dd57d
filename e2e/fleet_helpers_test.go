package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"certops/fixtures"
)

// natsCluster is a JetStream cluster of Debian nats-servers on loopback,
// each with its own store dir below one test folder.
type natsCluster struct {
	servers []*natsServer
}

// startNATSCluster starts n clustered servers named n1..nN.
func startNATSCluster(tb testing.TB, dir string, n int) *natsCluster {
	tb.Helper()
	cports := make([]int, n)
	for i := range cports {
		cports[i] = freePort(tb)
	}
	c := &natsCluster{}
	for i := range n {
		c.servers = append(c.servers, startNATS(tb, dir, fmt.Sprintf("n%d", i+1), freePort(tb), cports, i))
	}
	return c
}

// urls is the comma-separated client URL list of every server, as
// --nats takes it.
func (c *natsCluster) urls() string {
	var u []string
	for _, s := range c.servers {
		u = append(u, s.url())
	}
	return strings.Join(u, ",")
}

// source is a node's --source for fleet name over every server.
func (c *natsCluster) source(name string) string {
	var h []string
	for _, s := range c.servers {
		h = append(h, fmt.Sprintf("127.0.0.1:%d", s.port))
	}
	return "nats://" + strings.Join(h, ",") + "/" + name
}

// publisherStatus is the fleet part of a publisher's /api/v1/status.
type publisherStatus struct {
	Role      string `json:"role"`
	Published *struct {
		Revision string `json:"revision"`
		Sequence uint64 `json:"sequence"`
	} `json:"published"`
	PublishError string `json:"publish_error"`
	LastAttempt  *struct {
		Revision string `json:"revision"`
		Result   string `json:"result"`
		Errors   []any  `json:"errors"`
	} `json:"last_attempt"`
}

// statusClient polls status replies.
var statusClient = &http.Client{Timeout: 5 * time.Second}

// pubStatus reads a publisher's status; ok is false while it does not
// answer.
func pubStatus(d *daemon) (publisherStatus, bool) {
	var st publisherStatus
	resp, err := statusClient.Get("http://" + d.admin + "/api/v1/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	return st, true
}

// publishedRevision is the revision a publisher last published, or "".
func (s publisherStatus) publishedRevision() string {
	if s.Published == nil {
		return ""
	}
	return s.Published.Revision
}

// fleetNodeStatus is what the fleet tests read of a node's /api/v1/status.
type fleetNodeStatus struct {
	Verified bool `json:"verified"`
	Fleet    struct {
		Name              string `json:"name"`
		Sequence          uint64 `json:"sequence"`
		PublisherRevision string `json:"publisher_revision"`
	} `json:"fleet"`
}

// nodeStatus reads a node's status.
func nodeStatus(tb testing.TB, d *daemon) fleetNodeStatus {
	tb.Helper()
	code, body := d.get("/api/v1/status")
	var st fleetNodeStatus
	if code != 200 || json.Unmarshal(body, &st) != nil {
		tb.Fatalf("node status = %d %s", code, body)
	}
	return st
}

// fleetRecord is one node of `fleet status --format json`.
type fleetRecord struct {
	Node     string   `json:"node"`
	Revision string   `json:"revision"`
	Sequence uint64   `json:"sequence"`
	Result   string   `json:"result"`
	Verified bool     `json:"verified"`
	Errors   []string `json:"errors"`
}

// fleetStatusJSON is `fleet status --format json`.
type fleetStatusJSON struct {
	Fleet string `json:"fleet"`
	Head  struct {
		Revision string `json:"revision"`
		Sequence uint64 `json:"sequence"`
	} `json:"head"`
	Nodes     []fleetRecord `json:"nodes"`
	Converged int           `json:"converged"`
	Total     int           `json:"total"`
}

// fleetStatus runs `certops fleet status --format json`.
func fleetStatus(tb testing.TB, dir, urls, name string) fleetStatusJSON {
	tb.Helper()
	r := certops(tb, dir, nil, "fleet", "status", "--nats", urls, "--fleet", name, "--format", "json")
	var st fleetStatusJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		tb.Fatalf("fleet status --format json = exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	return st
}

// record returns the record of node in st.
func (st fleetStatusJSON) record(node string) (fleetRecord, bool) {
	for _, r := range st.Nodes {
		if r.Node == node {
			return r, true
		}
	}
	return fleetRecord{}, false
}

// fleetWait runs `certops fleet wait` for rev (given as an 8-character
// prefix, as a pipeline would) and requires exit 0 with every one of want
// nodes serving it.
func fleetWait(tb testing.TB, dir, urls, name, rev string, want int) {
	tb.Helper()
	fleetWaitWithin(tb, dir, urls, name, rev, want, time.Minute)
}

// fleetWaitWithin is fleetWait with a timeout of its own.
func fleetWaitWithin(tb testing.TB, dir, urls, name, rev string, want int, timeout time.Duration) {
	tb.Helper()
	start := time.Now()
	r := certops(tb, dir, nil, "fleet", "wait", "--nats", urls, "--fleet", name, "--revision", rev[:8], "--min", fmt.Sprint(want), "--timeout", timeout.String())
	if r.code != 0 {
		st := certops(tb, dir, nil, "fleet", "status", "--nats", urls, "--fleet", name)
		tb.Fatalf("fleet wait --revision %s = exit %d after %v: %s%s\nfleet status = exit %d: %s%s", rev[:8], r.code,
			time.Since(start).Round(time.Millisecond), r.stdout, r.stderr, st.code, st.stdout, st.stderr)
	}
	if w := fmt.Sprintf("served and verified on %d of %d nodes", want, want); !strings.Contains(r.stdout, w) {
		tb.Fatalf("fleet wait --revision %s printed %q, want %q", rev[:8], r.stdout, w)
	}
}

// requireServes makes a TLS handshake with every node for sni and
// requires the leaf of want.
func requireServes(tb testing.TB, what string, nodes []*daemon, sni string, want *fixtures.Leaf) {
	tb.Helper()
	for _, n := range nodes {
		got, err := servedSerial(n.listen, sni)
		if err != nil || got != want.Cert.SerialNumber.Text(16) {
			tb.Fatalf("%s: node %s serves %s serial %q (%v), want %s", what, n.listen, sni, got, err, want.Cert.SerialNumber.Text(16))
		}
	}
}

// shopYAML is the file of entity shop with leaf.
func shopYAML(leaf *fixtures.Leaf) map[string]string {
	return map[string]string{"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{leaf}})}
}

// scanBus reads every message of every stream on the servers at urls
// (key-value buckets and object stores are streams) and checks each with
// scanner. It returns how many messages it read.
func scanBus(tb testing.TB, urls string, scanner *fixtures.LeakScanner) int {
	tb.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		tb.Fatalf("scan bus: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var streams []string
	retryJS(tb, ctx, "scan bus: list streams", func(ctx context.Context) error {
		streams = streams[:0]
		names := js.StreamNames(ctx)
		for n := range names.Name() {
			streams = append(streams, n)
		}
		return names.Err()
	})
	if len(streams) == 0 {
		tb.Fatal("scan bus: no stream found")
	}
	total := 0
	for _, name := range streams {
		var s jetstream.Stream
		var info *jetstream.StreamInfo
		retryJS(tb, ctx, "scan bus: stream "+name, func(ctx context.Context) (err error) {
			if s, err = js.Stream(ctx, name); err != nil {
				return err
			}
			info, err = s.Info(ctx)
			return err
		})
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			var m *jetstream.RawStreamMsg
			err := retryJSErr(ctx, func(ctx context.Context) (err error) {
				m, err = s.GetMsg(ctx, seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					return nil // deleted or expired since Info
				}
				return err
			})
			if err != nil {
				tb.Fatalf("scan bus: stream %s message %d: %v", name, seq, err)
			}
			if m == nil {
				continue
			}
			total++
			scanner.Check(tb, fmt.Sprintf("stream %s message %d (subject %s)", name, seq, m.Subject), string(m.Data)+fmt.Sprint(m.Header))
		}
	}
	return total
}

// fleetArgs are the node flags for fleet name at src with the keys of
// dir.
func fleetArgs(dir, src, node string) []string {
	return []string{"--source", src, "--trusted-key", filepath.Join(dir, "trusted.pem"),
		"--data-key-file", filepath.Join(dir, "data.key"), "--node", node, "--data-dir", filepath.Join(dir, node)}
}

// streamReplicas returns the replica count of every stream on the servers
// at urls, by stream name.
func streamReplicas(tb testing.TB, urls string) map[string]int {
	tb.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		tb.Fatalf("stream replicas: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]int{}
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		out[info.Config.Name] = info.Config.Replicas
	}
	if err := l.Err(); err != nil {
		tb.Fatalf("stream replicas: %v", err)
	}
	return out
}

// startCertopsEnv is startCertops with env added to the clean
// environment (a publisher that validates secret references).
func startCertopsEnv(tb testing.TB, admin string, env []string, args ...string) *daemon {
	tb.Helper()
	bin := requireBinary(tb)
	d := &daemon{tb: tb, logs: new(fixtures.SyncBuffer), done: make(chan struct{}), admin: admin}
	d.cmd = exec.Command(bin, append(args, "--log-format", "json")...)
	d.cmd.Env = daemonEnv(tb, env)
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

// retryJS runs call with a deadline of 3 s per attempt until it succeeds
// or ctx ends, then fails tb with what: a cluster that just regained its
// quorum drops the JetStream API requests it receives while it elects
// leaders, and the client only sees its own deadline pass.
func retryJS(tb testing.TB, ctx context.Context, what string, call func(context.Context) error) {
	tb.Helper()
	if err := retryJSErr(ctx, call); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// retryJSErr is retryJS returning the last error.
func retryJSErr(ctx context.Context, call func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := call(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
