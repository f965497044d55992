// Package rlstest starts a real Redis and a real envoyproxy/ratelimit (RLS) on free
// 127.0.0.1 ports for a test, and stops them when the test ends.
//
// # Facts
//
// Observed on this machine against RLS at v1.4.1-0.20260122083618-3fb702589d36 and
// Debian's redis-server 7.0; facts_test.go fails if one of them changes.
//
//   - The domain must be in RLS's config, and a file of one line, "domain: NAME", is enough:
//     a descriptor carrying its own limit (requests_per_unit, unit) is counted against it
//     with no descriptors entry. A descriptor without a limit and without a config entry
//     is answered OK with no current_limit and not counted. An unknown domain is no error:
//     every descriptor is answered OK, no limit, nothing counted.
//   - A descriptor's hits_addend N adds N; 0 only checks. Absent, the request's
//     hits_addend applies, and 0 there (proto3's default) counts as 1.
//   - limit_remaining is limit - count, floored at 0 (absent from the message at 0);
//     exactly at the limit is OK; over it, OVER_LIMIT, and a check (hits_addend 0) over it
//     says OVER_LIMIT too. The overall code is OVER_LIMIT when one descriptor is.
//   - Refused hits are counted: after limit 3, hits 3 then 1, Redis holds 4.
//   - duration_until_reset is the rest of the epoch-aligned window in whole seconds (for
//     DAY: until the next UTC midnight).
//   - The Redis key is "<domain>_<key>_<value>_<key>_<value>..._<window start, epoch
//     seconds>", e.g. usageplans_plan_gold_key_k1_1796256000; its TTL is the unit plus up
//     to EXPIRATION_JITTER_MAX_SECONDS (300), from the first hit.
//   - Redis stopped: ShouldRateLimit answers gRPC UNKNOWN "response returned from Conn: EOF"
//     in 1-2 ms; /healthcheck stays 200. When Redis is back, each of the pool's stale
//     connections (REDIS_POOL_SIZE, 10) fails one more call, then RLS answers again.
//   - Redis stopped under concurrent calls: some are answered UNKNOWN at once, the others
//     held until the caller's deadline; once Redis is back RLS runs some of the held calls
//     (1 to 10 seen): counted, though their callers got an error. Such held calls make RLS
//     ignore SIGTERM (Stop kills it after 5 s).
//   - Redis hung (SIGSTOP): RLS does not answer at all; REDIS_TIMEOUT bounds the dial, not
//     the command, so the caller's deadline is the only bound.
//   - RLS pings Redis at its start and panics if that fails (src/redis/driver_impl.go):
//     start Redis first.
//
// Binaries: USAGEPLANS_RLS and USAGEPLANS_REDIS name them; otherwise build/out/bin (where
// `make deps` installs RLS as service_cmd) and then PATH are searched. A missing binary skips
// the test with a message naming `make deps`, or fails it when CI=true or
// USAGEPLANS_REQUIRE_RLS=1.
package rlstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlspb "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Options configure Start. The zero value serves the domain "usageplans" with an empty
// descriptor list and a Redis timeout of 300 ms.
type Options struct {
	// Domain is the RLS domain the config file declares; empty means "usageplans".
	Domain string
	// Config is the whole domain file (YAML); empty means "domain: <Domain>\n".
	Config string
	// RedisTimeout bounds RLS's Redis calls (REDIS_TIMEOUT); 0 means 300 ms. RLS's default,
	// 10 s, would make every Redis-down test wait that long.
	RedisTimeout time.Duration
	// Env holds extra RLS environment variables ("NAME=value"), applied last.
	Env []string
	// RedisPersist turns on Redis's append-only file with a sync per write, so that a
	// stopped (or killed) and restarted Redis comes back with its counts, as a production
	// Redis with AOF does; without it a restarted Redis starts empty.
	RedisPersist bool
}

// DefaultDomain is the domain served when Options.Domain is empty.
const DefaultDomain = "usageplans"

// Env is a running Redis and RLS pair.
type Env struct {
	Redis *Redis
	RLS   *RLS
}

// Start starts Redis, then RLS pointed at it, and waits until both answer. Both are stopped
// by t.Cleanup.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	redisBin := find(t, "USAGEPLANS_REDIS", "redis-server", "redis-server")
	rlsBin := find(t, "USAGEPLANS_RLS", "service_cmd", "ratelimit", "service_cmd")
	r := startRedis(t, redisBin, opts.RedisPersist)
	return &Env{Redis: r, RLS: StartRLS(t, rlsBin, r.Addr, opts)}
}

// find returns the binary named by the environment variable env, else the first of names
// in build/out/bin, else on PATH. It skips or fails t when there is none.
func find(t testing.TB, env string, names ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			missing(t, fmt.Sprintf("%s=%s: %v", env, p, err))
		}
		return p
	}
	if root, err := repoRoot(); err == nil {
		for _, n := range names {
			p := filepath.Join(root, "build", "out", "bin", n)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	missing(t, fmt.Sprintf("no %s in build/out/bin or on PATH, and %s is not set", names[0], env))
	return ""
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("USAGEPLANS_REQUIRE_RLS") == "1" {
		t.Fatalf("rlstest: %s (CI=true or USAGEPLANS_REQUIRE_RLS=1: failing instead of skipping; run `make deps`)", why)
		return
	}
	t.Skipf("rlstest: %s; run `make deps` (RLS) and install redis-server (apt-get install redis-server), or set USAGEPLANS_REQUIRE_RLS=1 to fail here", why)
}

// repoRoot is the nearest directory above the working directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("rlstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one child process that can be stopped and started again with the same command.
type proc struct {
	t     testing.TB
	name  string
	bin   string
	args  []string
	env   []string
	log   string // file the process's output is appended to
	ready func() error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.launchLocked()
	p.awaitLocked()
}

// locked runs f holding p.mu (released if f fails the test).
func (p *proc) locked(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

// launchLocked starts the process without waiting for it to be ready.
func (p *proc) launchLocked() {
	p.t.Helper()
	if p.cmd != nil {
		p.t.Fatalf("rlstest: %s is already running", p.name)
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("rlstest: %s log: %v", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		p.t.Fatalf("rlstest: start %s (%s): %v", p.name, p.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(done) }()
	p.cmd, p.done = cmd, done
}

// awaitLocked waits, up to 20 s, until the launched process is ready.
func (p *proc) awaitLocked() {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := p.ready()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			p.cmd = nil
			p.t.Fatalf("rlstest: %s exited before it was ready (%v); its output:\n%s", p.name, err, tail(p.log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stopLocked()
			p.t.Fatalf("rlstest: %s not ready after 20s: %v; its output:\n%s", p.name, err, tail(p.log))
		}
	}
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits for the exit. Stopping a stopped
// process does nothing.
func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *proc) stopLocked() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// signal sends sig to a running process; after SIGSTOP it returns once the process has
// stopped.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.t.Errorf("rlstest: %s is not running", p.name)
		return
	}
	p.cmd.Process.Signal(sig)
	if sig == syscall.SIGSTOP {
		waitStopped(p.cmd.Process.Pid)
	}
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// tail returns the last 4 KiB of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// Redis is a redis-server on 127.0.0.1 without persistence.
type Redis struct {
	// Addr is "127.0.0.1:PORT"; it stays the same across Stop and Start.
	Addr string
	p    *proc
}

// StartRedis starts bin as a redis-server on a free loopback port, with no RDB or AOF
// persistence (a restarted Redis starts empty) and protected mode off (it binds only
// 127.0.0.1). It is stopped by t.Cleanup.
func StartRedis(t testing.TB, bin string) *Redis {
	t.Helper()
	return startRedis(t, bin, false)
}

func startRedis(t testing.TB, bin string, persist bool) *Redis {
	t.Helper()
	dir := t.TempDir()
	port := FreePort(t)
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port)}
	aof := []string{"--appendonly", "no"}
	if persist {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	r.p = &proc{t: t, name: "redis-server", bin: bin, log: filepath.Join(dir, "redis.log"),
		args: append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"}, aof...),
		env: []string{"PATH=/usr/bin:/bin"},
		ready: func() error {
			got, err := r.Do("PING")
			if err == nil && got != "PONG" {
				err = fmt.Errorf("PING answered %q", got)
			}
			return err
		}}
	r.p.start()
	t.Cleanup(r.p.stop)
	return r
}

// Start starts a stopped Redis again on the same port: empty, or with its counts under
// Options.RedisPersist.
func (r *Redis) Start() { r.p.t.Helper(); r.p.start() }

// Stop stops Redis (SIGTERM) and waits for it to exit.
func (r *Redis) Stop() { r.p.stop() }

// Kill stops Redis with SIGKILL.
func (r *Redis) Kill() { r.p.kill() }

// Pause freezes Redis (SIGSTOP): connections stay open and nothing answers, as a hung
// server does. Resume or Stop ends it.
func (r *Redis) Pause() { r.p.signal(syscall.SIGSTOP) }

// Resume lets a paused Redis run again.
func (r *Redis) Resume() { r.p.signal(syscall.SIGCONT) }

// Restart stops and starts Redis; its data is gone.
func (r *Redis) Restart() { r.p.t.Helper(); r.p.stop(); r.p.start() }

// Running reports whether Redis was started and not stopped.
func (r *Redis) Running() bool { return r.p.running() }

// Do sends one command and returns its reply: a status or bulk string as is, an integer in
// decimal, an array as its elements joined by "\n", a nil reply as "". A Redis error reply
// is an error.
func (r *Redis) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

// readReply reads one RESP2 reply.
func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		items := make([]string, n)
		for i := range items {
			if items[i], err = readReply(br); err != nil {
				return "", err
			}
		}
		return strings.Join(items, "\n"), nil
	}
	return "", fmt.Errorf("unknown reply %q", line)
}

// RLS is envoyproxy/ratelimit's service_cmd with a file config of one domain.
type RLS struct {
	// GRPCAddr serves envoy.service.ratelimit.v3.RateLimitService (HTTP/2 cleartext).
	GRPCAddr string
	// HTTPAddr serves /json and /healthcheck.
	HTTPAddr string
	// DebugAddr serves /stats and the other debug pages.
	DebugAddr string
	// Domain is the domain of the config file.
	Domain string
	// ConfigFile is the domain file; rewrite it and Restart to change the config.
	ConfigFile string
	p          *proc
}

// StartRLS starts bin as RLS on free loopback ports, reading its config from a runtime
// directory holding one domain file and counting in the Redis at redisAddr (which must be
// up: RLS panics at start otherwise). It is stopped by t.Cleanup.
func StartRLS(t testing.TB, bin, redisAddr string, opts Options) *RLS {
	t.Helper()
	if opts.Domain == "" {
		opts.Domain = DefaultDomain
	}
	if opts.Config == "" {
		opts.Config = "domain: " + opts.Domain + "\n"
	}
	if opts.RedisTimeout == 0 {
		opts.RedisTimeout = 300 * time.Millisecond
	}
	root := t.TempDir()
	// RUNTIME_WATCH_ROOT=false: RLS reads every file under RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/
	// RUNTIME_APPDIRECTORY, the layout of its own docker-compose example.
	confDir := filepath.Join(root, "ratelimit", "config")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(confDir, opts.Domain+".yaml")
	if err := os.WriteFile(conf, []byte(opts.Config), 0o644); err != nil {
		t.Fatal(err)
	}
	grpcPort, httpPort, debugPort := FreePort(t), FreePort(t), FreePort(t)
	s := &RLS{
		GRPCAddr:   "127.0.0.1:" + strconv.Itoa(grpcPort),
		HTTPAddr:   "127.0.0.1:" + strconv.Itoa(httpPort),
		DebugAddr:  "127.0.0.1:" + strconv.Itoa(debugPort),
		Domain:     opts.Domain,
		ConfigFile: conf,
	}
	env := []string{
		"HOST=127.0.0.1", "PORT=" + strconv.Itoa(httpPort),
		"GRPC_HOST=127.0.0.1", "GRPC_PORT=" + strconv.Itoa(grpcPort),
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT=" + strconv.Itoa(debugPort),
		"USE_STATSD=false", "DISABLE_STATS=true", "LOG_LEVEL=warn", "LOG_FORMAT=text",
		"RUNTIME_ROOT=" + root, "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_APPDIRECTORY=config",
		"RUNTIME_WATCH_ROOT=false", "RUNTIME_IGNOREDOTFILES=true",
		"BACKEND_TYPE=redis", "REDIS_SOCKET_TYPE=tcp", "REDIS_TYPE=SINGLE", "REDIS_URL=" + redisAddr,
		"REDIS_TIMEOUT=" + opts.RedisTimeout.String(),
	}
	env = append(env, opts.Env...)
	client := &http.Client{Timeout: time.Second}
	s.p = &proc{t: t, name: "ratelimit", bin: bin, log: filepath.Join(root, "ratelimit.log"), env: env,
		ready: func() error {
			// The HTTP health check answers once the servers listen; the gRPC port opens
			// in the same start-up, checked too so that a caller may dial it at once.
			resp, err := client.Get("http://" + s.HTTPAddr + "/healthcheck")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("/healthcheck answered %s", resp.Status)
			}
			c, err := net.DialTimeout("tcp", s.GRPCAddr, time.Second)
			if err != nil {
				return err
			}
			return c.Close()
		}}
	s.p.start()
	t.Cleanup(s.p.stop)
	return s
}

// Start starts a stopped RLS again on the same ports.
func (s *RLS) Start() { s.p.t.Helper(); s.p.start() }

// Stop stops RLS (SIGTERM) and waits for it to exit.
func (s *RLS) Stop() { s.p.stop() }

// Kill stops RLS with SIGKILL.
func (s *RLS) Kill() { s.p.kill() }

// Pause freezes RLS (SIGSTOP) and returns once it is stopped: its ports accept connections
// and nothing answers.
func (s *RLS) Pause() { s.p.signal(syscall.SIGSTOP) }

// Resume lets a paused RLS run again.
func (s *RLS) Resume() { s.p.signal(syscall.SIGCONT) }

// Restart stops and starts RLS, which reads its config file again.
func (s *RLS) Restart() { s.p.t.Helper(); s.p.stop(); s.p.start() }

// Running reports whether RLS was started and not stopped.
func (s *RLS) Running() bool { return s.p.running() }

// Client dials RLS's gRPC port (closed by t.Cleanup) and returns the generated client of
// envoy.service.ratelimit.v3.RateLimitService, for tests that check RLS itself rather than
// the filter's own codec.
func (s *RLS) Client(t testing.TB) rlspb.RateLimitServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("rlstest: dial %s: %v", s.GRPCAddr, err)
	}
	t.Cleanup(func() { cc.Close() })
	return rlspb.NewRateLimitServiceClient(cc)
}

// Check starts Redis and RLS on a domain file config of domain and asks RLS, once, about
// one descriptor; it returns the descriptor's status. For tests that a shipped RLS config
// loads and serves what the filter expects.
func Check(t testing.TB, domain, config string, d *rlcommon.RateLimitDescriptor) *rlspb.RateLimitResponse_DescriptorStatus {
	t.Helper()
	env := Start(t, Options{Domain: domain, Config: config})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := env.RLS.Client(t).ShouldRateLimit(ctx, &rlspb.RateLimitRequest{Domain: domain, Descriptors: []*rlcommon.RateLimitDescriptor{d}})
	if err != nil || len(resp.Statuses) != 1 {
		t.Fatalf("rlstest: RLS on the config of %s: %v, %v\n%s", domain, resp, err, env.RLS.Log())
	}
	return resp.Statuses[0]
}

// Log returns the last 4 KiB RLS wrote to its stdout and stderr.
func (s *RLS) Log() string { return tail(s.p.log) }

// AwaitRedis waits, after Redis came back, until RLS counts in it again: each of RLS's
// pooled connections to the old Redis fails one call (REDIS_POOL_SIZE, 10), so it makes
// calls of its own (descriptor rlstest=drain, hits_addend 0: a key of its own, nothing
// counted) until 2 × 10 in a row succeed. A test calls it so that the stale connections
// fail none of the calls it counts.
func (e *Env) AwaitRedis(t testing.TB) {
	t.Helper()
	c := e.RLS.Client(t)
	d := &rlcommon.RateLimitDescriptor{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "rlstest", Value: "drain"}},
		Limit:      &rlcommon.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 1, Unit: typev3.RateLimitUnit_DAY},
		HitsAddend: wrapperspb.UInt64(0)}
	var err error
	for run, calls := 0, 0; run < 20; calls++ {
		if calls == 200 {
			t.Fatalf("rlstest: RLS still failing calls after 200 since Redis came back (last: %v)\n%s", err, e.RLS.Log())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err = c.ShouldRateLimit(ctx, &rlspb.RateLimitRequest{Domain: e.RLS.Domain, Descriptors: []*rlcommon.RateLimitDescriptor{d}})
		cancel()
		if run++; err != nil {
			run = 0
		}
	}
}

// Process is a child process of a test (a gateway, say) that it can stop, kill and start
// again with the same command line, as rlstest does with Redis and RLS: its output goes to
// a log file, and Start returns once ready answers nil.
type Process struct{ p *proc }

// ProcessSpec is one process for StartProcesses: bin run with args, env nil meaning the
// test's environment, ready once Ready answers nil.
type ProcessSpec struct {
	Name  string
	Bin   string
	Args  []string
	Env   []string
	Ready func() error
}

// StartProcesses starts every process at once, then waits, up to 20 s each, until each is
// ready (processes that each take seconds to start, start side by side). Each is stopped by
// t.Cleanup.
func StartProcesses(t testing.TB, specs ...ProcessSpec) []*Process {
	t.Helper()
	ps := make([]*Process, len(specs))
	for i, s := range specs {
		ps[i] = &Process{p: &proc{t: t, name: s.Name, bin: s.Bin, args: s.Args, env: s.Env, ready: s.Ready,
			log: filepath.Join(t.TempDir(), s.Name+".log")}}
		t.Cleanup(ps[i].p.stop)
		ps[i].p.locked(ps[i].p.launchLocked)
	}
	for _, p := range ps {
		p.p.locked(p.p.awaitLocked)
	}
	return ps
}

// Start starts a stopped process again, with the same command line.
func (p *Process) Start() { p.p.t.Helper(); p.p.start() }

// Stop sends SIGTERM (SIGKILL after 5 s) and waits for the exit.
func (p *Process) Stop() { p.p.stop() }

// Kill stops the process with SIGKILL and waits for the exit.
func (p *Process) Kill() { p.p.kill() }

// Signal sends sig to the running process.
func (p *Process) Signal(sig syscall.Signal) { p.p.signal(sig) }

// Running reports whether the process was started and has not been stopped.
func (p *Process) Running() bool { return p.p.running() }

// Log returns the last 4 KiB the process wrote to its stdout and stderr, over all its runs.
func (p *Process) Log() string { return tail(p.p.log) }
