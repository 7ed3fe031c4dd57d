package fleet

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// Fleet benchmarks (issue 12): one NATS server, a 10,000-entity fleet.
// Run with
//
//	go test ./fleet/ -run '^$' -bench 'BenchmarkFleet' -benchtime 5x
//
// They use Debian's nats-server when installed (a separate process whose
// CPU and memory are measured), else the embedded one. Figures: README
// "Running a fleet".

const benchEntities = 10000

// benchFleet publishes n entities with literal keys (the costliest kind
// for a node: every key is opened) and returns the publisher.
func benchFleet(b *testing.B, ns *natsServer, n int) (*Publisher, []Entity, testKeys) {
	b.Helper()
	k := newTestKeys(b)
	ca := fixtures.NewRootCA(b, "bench CA")
	leaf := ca.Server(b, "bench.example.test")
	ents := make([]Entity, n)
	for i := range ents {
		name := fmt.Sprintf("entity-%05d", i)
		ents[i] = Entity{File: name + ".yaml", Hash: name + "@0", Doc: Document{Name: name, SNIs: []string{name + ".example.test"}, Cert: string(leaf.ChainPEM), Key: string(leaf.KeyPEM)}}
	}
	f := openFleet(b, ns, "bench", Options{})
	p := publisher(b, f, k, true)
	if _, err := p.Publish(context.Background(), "rev-0", ents); err != nil {
		b.Fatal(err)
	}
	return p, ents, k
}

func benchServer(b *testing.B) (*natsServer, bool) {
	if _, err := os.Stat(debianServer); err == nil {
		return binaryServer(b), true
	}
	return embeddedServer(b), false
}

// serverUsage returns the CPU time and resident memory of the benchmark's
// nats-server process, from /proc (other nats-servers may run on the
// machine).
func serverUsage(b *testing.B, ns *natsServer) (cpu time.Duration, rssKiB int) {
	pid := ns.pid
	if pid == 0 {
		return 0, 0
	}
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, rssKiB // USER_HZ 100
}

// BenchmarkFleetJoin: a new node joins a 10,000-entity fleet: connect,
// fetch and verify every page and blob, record it applied.
func BenchmarkFleetJoin(b *testing.B) {
	ns, binary := benchServer(b)
	_, _, k := benchFleet(b, ns, benchEntities)
	var bytes uint64
	cpu0, _ := serverUsage(b, ns)
	var peak int
	b.ResetTimer()
	for range b.N {
		c, err := Connect(ConnOptions{URLs: []string{ns.URL}})
		if err != nil {
			b.Fatal(err)
		}
		f, _ := Open(c, "bench", Options{})
		n, _ := f.NewNode(NodeOptions{Trusted: []TrustedKey{k.sign.Public()}, DataKey: k.dk, Dir: b.TempDir()})
		rev, err := n.Fetch(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Applied(rev); err != nil {
			b.Fatal(err)
		}
		in, _ := c.Stats()
		bytes += in
		c.Close()
		if binary {
			_, rss := serverUsage(b, ns)
			peak = max(peak, rss)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(bytes)/float64(b.N)/1024, "KiB/join")
	if binary {
		cpu1, _ := serverUsage(b, ns)
		b.ReportMetric(float64((cpu1-cpu0).Milliseconds())/float64(b.N), "server-cpu-ms/join")
		b.ReportMetric(float64(peak)/1024, "server-rss-MiB")
	}
}

// BenchmarkFleetOneFileChange: 200 nodes follow a 10,000-entity fleet;
// each iteration publishes a one-entity change and measures, per node,
// the time from the start of Publish to the node having fetched,
// verified and recorded the new manifest, and the bytes it received.
func BenchmarkFleetOneFileChange(b *testing.B) {
	nodes := 200
	if v, err := strconv.Atoi(os.Getenv("CERTOPS_BENCH_NODES")); err == nil {
		nodes = v
	}
	ns, binary := benchServer(b)
	t0 := time.Now()
	p, ents, k := benchFleet(b, ns, benchEntities)
	b.Logf("published %d entities in %v", benchEntities, time.Since(t0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shared := &blobCache{mem: map[string][]byte{}, shared: true}

	type applied struct {
		seq uint64
		at  time.Time
	}
	type benchNode struct {
		conn *Conn
		node *Node
		got  chan applied
	}
	bn := make([]*benchNode, nodes)
	tj := time.Now()
	for i := range bn {
		c, err := Connect(ConnOptions{URLs: []string{ns.URL}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		f, _ := Open(c, "bench", Options{})
		n, _ := f.NewNode(NodeOptions{Trusted: []TrustedKey{k.sign.Public()}, DataKey: k.dk, cache: shared, Poll: time.Minute})
		bn[i] = &benchNode{conn: c, node: n, got: make(chan applied, 64)}
		if i == 0 {
			rev, err := n.Fetch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			n.Applied(rev)
			continue
		}
		// The others start where the first one is, as if each had joined
		// (BenchmarkFleetJoin measures that): 200 joins of 10,000 blobs
		// each would take minutes of setup on two cores and measure
		// nothing this benchmark reports.
		n.joinAs(bn[0].node)
	}
	b.Logf("%d nodes joined in %v", nodes, time.Since(tj))
	for _, x := range bn {
		trig := make(chan struct{}, 1)
		go x.node.Watch(ctx, func() {
			select {
			case trig <- struct{}{}:
			default:
			}
		})
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-trig:
				}
				rev, err := x.node.Fetch(ctx)
				if err != nil {
					continue
				}
				if rev.Sequence > x.node.AppliedSequence() {
					x.node.Applied(rev)
					x.got <- applied{rev.Sequence, time.Now()}
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // watchers settle
	var lat []time.Duration
	var bytesPerNode []uint64
	ca := fixtures.NewRootCA(b, "bench CA 2")
	if path := os.Getenv("CERTOPS_BENCH_CPUPROFILE"); path != "" {
		// The profile of the measured loop alone, without the setup.
		pf, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	cpu0, srv0 := fixtures.ProcessCPU(), time.Duration(0)
	if binary {
		srv0, _ = serverUsage(b, ns)
	}
	b.ResetTimer()
	for i := range b.N {
		before := make([]uint64, nodes)
		for j, x := range bn {
			before[j], _ = x.conn.Stats()
		}
		leaf := ca.Server(b, "changed.example.test")
		ents[i%len(ents)].Doc.Cert, ents[i%len(ents)].Doc.Key = string(leaf.ChainPEM), string(leaf.KeyPEM)
		ents[i%len(ents)].Hash = fmt.Sprintf("changed@%d", i)
		start := time.Now()
		pub, err := p.Publish(ctx, fmt.Sprintf("rev-%d", i+1), ents)
		if err != nil {
			b.Fatal(err)
		}
		for j, x := range bn {
			var a applied
			for a.seq < pub.Sequence {
				select {
				case a = <-x.got:
				case <-time.After(30 * time.Second):
					b.Fatalf("node %d did not apply sequence %d", j, pub.Sequence)
				}
			}
			lat = append(lat, a.at.Sub(start))
			after, _ := x.conn.Stats()
			bytesPerNode = append(bytesPerNode, after-before[j])
		}
	}
	b.StopTimer()
	// CPU is what a shared machine does not distort: the nodes' and the
	// publisher's (this process), and the NATS server's.
	b.ReportMetric(float64((fixtures.ProcessCPU()-cpu0).Milliseconds())/float64(b.N), "client-cpu-ms/change")
	if binary {
		srv1, _ := serverUsage(b, ns)
		b.ReportMetric(float64((srv1-srv0).Milliseconds())/float64(b.N), "server-cpu-ms/change")
	}
	slices.Sort(lat)
	slices.Sort(bytesPerNode)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(bytesPerNode[len(bytesPerNode)/2])/1024, "KiB/node-p50")
	b.ReportMetric(float64(bytesPerNode[len(bytesPerNode)-1])/1024, "KiB/node-max")
}

// BenchmarkNodeFetchOneChange: one node, 10,000 entities, the cost of
// fetching a one-entity change (CPU of the node side).
func BenchmarkNodeFetchOneChange(b *testing.B) {
	ns := embeddedServer(b)
	p, ents, k := benchFleet(b, ns, benchEntities)
	ctx := context.Background()
	n := node(b, openFleet(b, ns, "bench", Options{}), k, "")
	rev, err := n.Fetch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n.Applied(rev)
	ca := fixtures.NewRootCA(b, "bench CA 2")
	leaf := ca.Server(b, "changed.example.test")
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		ents[i%len(ents)].Doc.Cert = string(leaf.ChainPEM) + strconv.Itoa(i)
		ents[i%len(ents)].Hash = fmt.Sprintf("changed@%d", i)
		if _, err := p.Publish(ctx, fmt.Sprintf("rev-%d", i+1), ents); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rev, err := n.Fetch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n.Applied(rev)
	}
}

// joinAs gives n the verified state of other, a node of the same fleet
// sharing its cache: what n would hold after fetching and applying the
// same manifest itself. For benchmarks only.
func (n *Node) joinAs(other *Node) {
	other.mu.Lock()
	defer other.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	own := func(r *Revision) *Revision {
		if r == nil {
			return nil
		}
		cp := *r
		cp.node = n
		return &cp
	}
	n.floor, n.applied, n.current = other.floor, own(other.applied), own(other.current)
	for d, p := range other.parsed {
		n.parsed[d] = p
	}
	for d := range other.opened {
		n.opened[d] = true
	}
}
