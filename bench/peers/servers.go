package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one server process under test, serving one certificate set.
type server struct {
	kind    string // certops, haproxy, nginx, go-static
	label   string // kind plus what distinguishes it
	set     *certSet
	addr    string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	startup time.Duration
	// rotate makes the server serve l for entity i and returns when it
	// has been told to; the caller times until a handshake sees it.
	rotate func(i int, l leaf) error
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start starts cmd with its output in dir/log and waits until a
// handshake for the set's last name serves its certificate.
func (s *server) start(ctx context.Context) error {
	logf, err := os.Create(filepath.Join(s.dir, "log"))
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	begin := time.Now()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	last := s.set.n - 1
	want := s.set.leaves[last].serial
	if s.kind == "go-static" {
		last, want = 0, s.set.leaves[0].serial
	}
	if _, err := s.waitFor(ctx, name(last), want, 120*time.Second, 0); err != nil {
		return fmt.Errorf("%s: not serving after %v (see %s): %w", s.label, time.Since(begin).Round(time.Millisecond),
			filepath.Join(s.dir, "log"), err)
	}
	s.startup = time.Since(begin)
	return nil
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// waitFor does handshakes for sni until the leaf served has serial want,
// pausing for pause after each that serves another, and returns how long
// it took.
func (s *server) waitFor(ctx context.Context, sni string, want *big.Int, limit, pause time.Duration) (time.Duration, error) {
	begin := time.Now()
	deadline := begin.Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		select {
		case <-s.exited:
			return 0, fmt.Errorf("exited: %v", s.cmd.ProcessState)
		default:
		}
		serial, err := handshake(s.addr, sni)
		if err == nil && serial.Cmp(want) == 0 {
			return time.Since(begin), nil
		}
		if err != nil {
			last = err
			time.Sleep(20 * time.Millisecond) // not listening yet
		} else {
			last = fmt.Errorf("serial %v served, want %v", serial, want)
			time.Sleep(pause)
		}
	}
	return 0, fmt.Errorf("gave up after %v: %w", limit, last)
}

// cpu returns the CPU time of the server's process tree (nginx's workers
// are children of its master): the time its threads ran, in nanoseconds
// from /proc/PID/task/TID/schedstat where the kernel has it (the 10 ms
// ticks of utime and stime in /proc/PID/stat would make short rounds
// coarse), else user+system from /proc/PID/stat.
func (s *server) cpu() (time.Duration, error) {
	var total time.Duration
	for _, pid := range tree(s.cmd.Process.Pid) {
		if ran, ok := schedRun(pid); ok {
			total += ran
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited meanwhile
		}
		// Fields after the parenthesised command: state is field 3,
		// utime 14, stime 15 (proc(5)).
		rest := string(data[bytes.LastIndexByte(data, ')')+2:])
		f := strings.Fields(rest)
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / clockTicks
	}
	return total, nil
}

// schedRun returns the time the threads of pid have run on a CPU, the
// first field of each /proc/PID/task/TID/schedstat. A thread that exits
// between two readings takes its time with it: Go servers keep their
// threads, and HAProxy (nbthread 1) and nginx's worker have one.
func schedRun(pid int) (time.Duration, bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			if os.IsNotExist(err) && len(tasks) > 1 {
				continue // that thread exited meanwhile
			}
			return 0, false
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return 0, false
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		total += time.Duration(ns)
	}
	return total, true
}

const clockTicks = 100 // USER_HZ on Linux

// rss returns the resident set of the server's process tree in bytes.
func (s *server) rss() int64 {
	var total int64
	for _, pid := range tree(s.cmd.Process.Pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb << 10
			}
		}
		f.Close()
	}
	return total
}

// tree returns pid and its descendants.
func tree(root int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
	}
	pids := []int{root}
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// newCertops runs the daemon on a folder of its own holding the set's
// entity files: every daemon watching one folder would reconcile every
// rotation at once, each slowing the others down on a small machine.
func newCertops(bin, dir string, set *certSet, env ...string) (*server, error) {
	entities := filepath.Join(dir, "entities")
	if err := set.linkEntities(entities); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--source", entities, "--listen", addr,
		"--admin", admin, "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(append(os.Environ(), gctrace), env...)
	s := &server{kind: "certops", set: set, addr: addr, dir: dir, cmd: cmd}
	// Only the entity file: the other forms, written for HAProxy and
	// nginx, would delay the first handshake after the write and compete
	// with the daemon for the CPU while it applies the change.
	s.rotate = func(i int, l leaf) error { return writeEntity(entities, i, l) }
	return s, nil
}

// newHAProxy runs HAProxy with one thread and the set as a crt-list.
// Rotation is the runtime API's set ssl cert and commit ssl cert.
func newHAProxy(dir string, set *certSet) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "haproxy.sock")
	cfg := fmt.Sprintf(`global
    nbthread 1
    maxconn 4096
    stats socket %s mode 600 level admin
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind %s ssl crt-list %s
    http-request return status 200 content-type text/plain string ok
`, sock, addr, filepath.Join(set.dir, "crt-list"))
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s := &server{kind: "haproxy", set: set, addr: addr, dir: dir, cmd: exec.Command("haproxy", "-db", "-f", path)}
	s.rotate = func(i int, l leaf) error {
		payload := append(append([]byte{}, l.certPEM...), l.keyPEM...)
		out, err := haproxyCommand(sock, fmt.Sprintf("set ssl cert %s <<\n%s\n", set.pemPath(i), payload))
		if err != nil || !strings.Contains(out, "Transaction") {
			return fmt.Errorf("haproxy: set ssl cert: %q %v", out, err)
		}
		out, err = haproxyCommand(sock, fmt.Sprintf("commit ssl cert %s\n", set.pemPath(i)))
		if err != nil || !strings.Contains(out, "Success") {
			return fmt.Errorf("haproxy: commit ssl cert: %q %v", out, err)
		}
		return nil
	}
	return s, nil
}

func haproxyCommand(sock, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", err
	}
	out, err := io.ReadAll(c)
	return string(out), err
}

// newNginx runs nginx with one worker and one server block per
// certificate. Rotation writes the files and reloads (SIGHUP, what
// nginx -s reload sends).
func newNginx(dir string, set *certSet) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `worker_processes 1;
daemon off;
master_process on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server_names_hash_max_size 65536;
    server_names_hash_bucket_size 128;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_body_temp_path %[1]s/tmp;
    proxy_temp_path %[1]s/tmp;
    fastcgi_temp_path %[1]s/tmp;
    uwsgi_temp_path %[1]s/tmp;
    scgi_temp_path %[1]s/tmp;
`, dir)
	for i := range set.n {
		fmt.Fprintf(&b, "    server { listen %s ssl; server_name %s; ssl_certificate %s; ssl_certificate_key %s; return 200 ok; }\n",
			addr, name(i), set.crtPath(i), set.keyPath(i))
	}
	b.WriteString("}\n")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	s := &server{kind: "nginx", set: set, addr: addr, dir: dir, cmd: exec.Command("nginx", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))}
	s.rotate = func(i int, l leaf) error {
		if err := set.writePEM(i, l); err != nil {
			return err
		}
		return s.cmd.Process.Signal(syscall.SIGHUP)
	}
	return s, nil
}

// newStatic runs this program as a plain net/http + crypto/tls server
// with one static certificate: the baseline.
func newStatic(self, dir string, set *certSet, env ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve-static", addr, "-cert", set.crtPath(0), "-key", set.keyPath(0))
	cmd.Env = append(append(os.Environ(), gctrace), env...)
	return &server{kind: "go-static", set: set, addr: addr, dir: dir, cmd: cmd}, nil
}

// serveStatic is the baseline server's main.
func serveStatic(addr, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              addr,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}),
	}
	err = srv.ListenAndServeTLS("", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// gctrace makes a Go server print one line per GC cycle to its log, which
// gcTrace reads: it costs the server one short write per cycle, where
// asking it over HTTP would cost a request (certops' metrics with 10,000
// entities are a large page).
const gctrace = "GODEBUG=gctrace=1"

// gcTotals is what a Go server's gctrace lines say of its collections
// up to the last one logged.
type gcTotals struct {
	cycles int64 // the number of the last cycle
	// cpu is the CPU time the cycles took by the runtime's own account:
	// both stop-the-world phases and the marking by allocating goroutines
	// (assists) and by the background and idle workers.
	cpu time.Duration
}

func (g gcTotals) minus(o gcTotals) gcTotals {
	return gcTotals{cycles: g.cycles - o.cycles, cpu: g.cpu - o.cpu}
}

// gcTrace returns what the server's log says of its collections so far,
// and false for a server that logs none (not a Go server).
func (s *server) gcTrace() (gcTotals, bool) {
	if s.kind != "certops" && s.kind != "certops-base" && s.kind != "go-static" {
		return gcTotals{}, false
	}
	data, err := os.ReadFile(filepath.Join(s.dir, "log"))
	if err != nil {
		return gcTotals{}, false
	}
	return parseGCTrace(string(data)), true
}

// parseGCTrace adds up the gctrace lines of log. They read (runtime
// package docs)
//
//	gc 12 @3.4s 1%: 0.02+1.5+0.01 ms clock, 0.05+0.3/2.1/4.0+0.03 ms cpu, 30->31->26 MB, ...
//
// where the CPU figures are sweep termination, then assist, background
// and idle marking, then mark termination. Other lines are skipped.
func parseGCTrace(log string) gcTotals {
	var g gcTotals
	for line := range strings.Lines(log) {
		rest, ok := strings.CutPrefix(line, "gc ")
		if !ok {
			continue
		}
		num, rest, _ := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			continue
		}
		g.cycles = n
		before, _, ok := strings.Cut(rest, " ms cpu")
		if !ok {
			continue
		}
		fields := before[strings.LastIndexByte(before, ' ')+1:]
		ms := 0.0
		for part := range strings.SplitSeq(fields, "+") {
			for f := range strings.SplitSeq(part, "/") {
				v, err := strconv.ParseFloat(f, 64)
				if err != nil {
					continue
				}
				ms += v
			}
		}
		g.cpu += time.Duration(ms * float64(time.Millisecond))
	}
	return g
}

// settle waits until the server has spent less than 20 ms of CPU in a
// second, for at most limit, and returns how long it waited: work left
// from the start (certops' served-state proof does a handshake for every
// name) would otherwise be counted in the first rounds.
func (s *server) settle(ctx context.Context, limit time.Duration) (time.Duration, error) {
	begin := time.Now()
	last, err := s.cpu()
	if err != nil {
		return 0, err
	}
	for time.Since(begin) < limit {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.exited:
			return 0, fmt.Errorf("exited: %v", s.cmd.ProcessState)
		case <-time.After(time.Second):
		}
		now, err := s.cpu()
		if err != nil {
			return 0, err
		}
		if now-last < 20*time.Millisecond {
			return time.Since(begin), nil
		}
		last = now
	}
	return time.Since(begin), fmt.Errorf("still busy after %v", limit)
}
