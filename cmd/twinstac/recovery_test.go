//go:build linux

package main

// Crash recovery, with real processes: the test binary runs itself as
// `twinstac serve` and `twinstac worker` (TestMain, asBinaryEnv), and the
// tests SIGKILL them. What they show: the job row in the database is the
// truth; a worker claims a job by a conditional update on its attempt;
// asynq gives an abandoned task to another worker once its lease has
// expired; the reconciler queues jobs that were stored but not queued.
// No accepted job is lost or left running.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/twinstac/twinstac/internal/apitest"
	"github.com/twinstac/twinstac/internal/postgres"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// TestKilledWorkersJobRunsOnAnother kills a worker, and its phase
// script, in the middle of a job: once the task's lease has expired
// another worker runs the job's second attempt to its end. asynq takes
// 60–120 s to notice (the lease, then its recoverer's pass): this is the
// slowest test of the package.
func TestKilledWorkersJobRunsOnAnother(t *testing.T) {
	t.Parallel()
	e := setupRecovery(t, recoveryPostgres|recoveryRedis)
	// A short reconcile interval: the reconciler looks at the job every
	// second while its worker is dead, and must leave it to asynq.
	common := slices.Concat(e.args(), []string{"--reconcile-interval", "1s"})
	srv := startTwinstac(t, "serve", "serve", slices.Concat(common, []string{"--addr", "127.0.0.1:0", "--workers", "0", "--admin-token", recoverySecret})...)
	api := newRecoveryAPI(t, srv.base)
	api.publishTwin(25) // 25 beats, 0.2 s apart: about 5 s
	a := startTwinstac(t, "worker A", "worker", slices.Concat(common, []string{"--concurrency", "1"})...)

	id := api.submit()
	var j *jobs.Job
	testdb.WaitFor(t, time.Minute, "the job did not start on worker A", every(100*time.Millisecond, func() bool {
		j = e.job(t, id)
		return j.Status == jobs.StatusRunning && j.Worker == a.worker() && e.hasLine(t, id, 1, "beat 2")
	}))
	if j.Attempt != 1 {
		t.Fatalf("the job runs attempt %d on worker A, want 1", j.Attempt)
	}

	killed := time.Now()
	orphans := a.kill(t)
	if len(orphans) > 0 {
		// The phase script dies with its worker (or on its next write to
		// the worker's pipe); what it started may run on until it ends.
		// They are killed here as a crash of the machine would.
		t.Logf("the phase processes %v outlived worker A; killing them", orphans)
		for _, pid := range orphans {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	b := startTwinstac(t, "worker B", "worker", slices.Concat(common, []string{"--concurrency", "1"})...)

	var again time.Duration
	testdb.WaitFor(t, 4*time.Minute, "the job did not succeed on worker B", every(200*time.Millisecond, func() bool {
		j = e.job(t, id)
		if again == 0 && j.Attempt >= 2 && j.Status != jobs.StatusAccepted {
			again = time.Since(killed)
		}
		if j.Status.Final() && j.Status != jobs.StatusSuccessful {
			t.Fatalf("the job ended %s: %s", j.Status, j.Message)
		}
		return j.Status == jobs.StatusSuccessful
	}))
	done := time.Since(killed)
	t.Logf("recovery: worker A killed → job running on worker B in %s, successful in %s", again.Round(100*time.Millisecond), done.Round(100*time.Millisecond))
	if j.Attempt != 2 || j.Worker != b.worker() {
		t.Fatalf("the job succeeded at attempt %d on %q, want attempt 2 on worker B (%s)", j.Attempt, j.Worker, b.worker())
	}
	api.checkResult(j)
	log := e.log(t, id)
	for _, want := range []struct {
		attempt int
		text    string
	}{
		{1, "attempt 1 of 3 started on worker " + a.worker()},
		{2, "attempt 2 of 3 started on worker " + b.worker()},
		{2, "beat 25"},
		{2, "phase execute succeeded"},
	} {
		if !hasLine(log, want.attempt, want.text) {
			t.Errorf("the job's log lacks %q at attempt %d:\n%s", want.text, want.attempt, showLog(log))
		}
	}
	if hasLine(log, 1, "beat 25") || hasLine(log, 1, "phase execute") {
		t.Errorf("attempt 1 ran to its end although its worker was killed:\n%s", showLog(log))
	}
}

// TestServerRestartKeepsQueuedJob kills a server that runs no jobs
// itself right after it accepted one: the job's task waits in Redis, and
// the next server, with a worker, runs it, long before the reconciler
// would have queued it again.
func TestServerRestartKeepsQueuedJob(t *testing.T) {
	t.Parallel()
	e := setupRecovery(t, recoveryPostgres|recoveryRedis)
	serve := slices.Concat(e.args(), []string{"--addr", "127.0.0.1:0", "--admin-token", recoverySecret})
	first := startTwinstac(t, "serve 1", "serve", slices.Concat(serve, []string{"--workers", "0"})...)
	api := newRecoveryAPI(t, first.base)
	api.publishTwin(5)
	id := api.submit()
	info, err := e.inspector.GetTaskInfo(e.queue, id)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("the accepted job's task: %v, %v; want it pending", info, err)
	}
	first.kill(t)

	// The default reconcile interval (30 s, jobs untouched for 30 s): a
	// job done sooner was run from the queue Redis kept.
	restarted := time.Now()
	second := startTwinstac(t, "serve 2", "serve", slices.Concat(serve, []string{"--workers", "1"})...)
	api = newRecoveryAPI(t, second.base)
	j := api.waitSuccessful(id, 20*time.Second)
	t.Logf("recovery: job successful %s after the restart", time.Since(restarted).Round(100*time.Millisecond))
	if j["dt:attempt"] != 1.0 {
		t.Fatalf("the job succeeded at attempt %v, want 1", j["dt:attempt"])
	}
	api.checkResult(e.job(t, id))
}

// TestServerRestartRequeuesFromTheDatabase kills a server on its
// in-process Redis (no --redis-url) and SQLite, the setup-free default,
// right after it accepted a job: the queue is gone with it, and the next
// server's reconciler queues the job again from its row.
func TestServerRestartRequeuesFromTheDatabase(t *testing.T) {
	t.Parallel()
	e := setupRecovery(t, 0)
	serve := slices.Concat(e.args(), []string{"--addr", "127.0.0.1:0", "--admin-token", recoverySecret, "--reconcile-interval", "1s"})
	first := startTwinstac(t, "serve 1", "serve", slices.Concat(serve, []string{"--workers", "0"})...)
	api := newRecoveryAPI(t, first.base)
	api.publishTwin(5)
	id := api.submit()
	first.kill(t)

	restarted := time.Now()
	second := startTwinstac(t, "serve 2", "serve", slices.Concat(serve, []string{"--workers", "1"})...)
	api = newRecoveryAPI(t, second.base)
	j := api.waitSuccessful(id, time.Minute)
	t.Logf("recovery: job successful %s after the restart", time.Since(restarted).Round(100*time.Millisecond))
	if j["dt:attempt"] != 1.0 {
		t.Fatalf("the job succeeded at attempt %v, want 1", j["dt:attempt"])
	}
}

const recoverySecret = "recovery-test-secret"

// What a recovery test needs besides a data folder.
const (
	recoveryPostgres = 1 << iota
	recoveryRedis
)

// recoveryEnv is what the processes of a recovery test share: a data
// folder, and a database and a job queue of their own.
type recoveryEnv struct {
	dataDir  string
	dbURL    string
	store    *postgres.Store
	redisURL string
	// queue is the job queue's name on Redis: the test's own, so that
	// no other test's worker on the same Redis takes its tasks.
	queue     string
	inspector *asynq.Inspector
}

func setupRecovery(t *testing.T, needs int) *recoveryEnv {
	t.Helper()
	e := &recoveryEnv{dataDir: filepath.Join(t.TempDir(), "data")}
	if needs&recoveryPostgres != 0 {
		e.store = testdb.Postgres(t)
		var schema string
		if err := e.store.Pool().QueryRow(t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(testdb.ServiceURL(t, "TWINSTAC_TEST_POSTGRES_URL"))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema+",public")
		u.RawQuery = q.Encode()
		e.dbURL = u.String()
	}
	if needs&recoveryRedis != 0 {
		e.redisURL = testdb.ServiceURL(t, "TWINSTAC_TEST_REDIS_URL")
		conn, err := asynq.ParseRedisURI(e.redisURL)
		if err != nil {
			t.Fatal(err)
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		e.queue = "recovery-" + hex.EncodeToString(b[:])
		e.inspector = asynq.NewInspector(conn)
		t.Cleanup(func() {
			for q := range workers.QueuesOf(e.queue) {
				_ = e.inspector.DeleteQueue(q, true)
			}
			_ = e.inspector.Close()
			// DeleteQueue leaves the queue's counters.
			rdb, ok := conn.MakeRedisClient().(redis.UniversalClient)
			if !ok {
				return
			}
			defer rdb.Close()
			ctx := context.Background()
			for q := range workers.QueuesOf(e.queue) {
				keys, _ := rdb.Keys(ctx, "asynq:{"+q+"}:*").Result()
				if len(keys) > 0 {
					_ = rdb.Del(ctx, keys...).Err()
				}
			}
		})
	}
	return e
}

// args are the flags every process of the test gets.
func (e *recoveryEnv) args() []string {
	a := []string{"--data-dir", e.dataDir, "--log-format", "json"}
	if e.dbURL != "" {
		a = append(a, "--database-url", e.dbURL)
	}
	if e.redisURL != "" {
		a = append(a, "--redis-url", e.redisURL, "--job-queue", e.queue)
	}
	return a
}

// job reads the job's row, which is the truth.
func (e *recoveryEnv) job(t *testing.T, id string) *jobs.Job {
	t.Helper()
	j, err := e.store.GetJob(t.Context(), id)
	if err != nil {
		t.Fatalf("reading job %s: %v", id, err)
	}
	return j
}

func (e *recoveryEnv) log(t *testing.T, id string) []jobs.LogEntry {
	t.Helper()
	entries, err := e.store.ReadLog(t.Context(), id, 0, 10000)
	if err != nil {
		t.Fatalf("reading the log of job %s: %v", id, err)
	}
	return entries
}

func (e *recoveryEnv) hasLine(t *testing.T, id string, attempt int, text string) bool {
	t.Helper()
	return hasLine(e.log(t, id), attempt, text)
}

func hasLine(log []jobs.LogEntry, attempt int, text string) bool {
	for _, l := range log {
		if l.Attempt == attempt && strings.Contains(l.Text, text) {
			return true
		}
	}
	return false
}

func showLog(log []jobs.LogEntry) string {
	var b strings.Builder
	for _, l := range log {
		fmt.Fprintf(&b, "  #%d %s %s: %s\n", l.Attempt, l.Phase, l.Stream, l.Text)
	}
	return b.String()
}

// every makes a condition check at most once per period: WaitFor checks
// every few milliseconds, too often for a minute of database reads.
func every(period time.Duration, cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) < period {
			return false
		}
		last = time.Now()
		return cond()
	}
}

// twinstacProcess is the test binary running as `twinstac`.
type twinstacProcess struct {
	name   string
	cmd    *exec.Cmd
	base   string // a server's URL
	exited chan struct{}
	out    lockedBuffer // its log (stderr)
}

// startTwinstac runs `twinstac command args` in a process of its own
// and waits until it is ready: a server listening, a worker taking
// jobs. The process is killed when the test ends; its log is shown if
// the test failed.
func startTwinstac(t *testing.T, name, command string, args ...string) *twinstacProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &twinstacProcess{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(exe, append([]string{command}, args...)...)
	p.cmd.Env = append(os.Environ(), asBinaryEnv+"=1")
	p.cmd.Stderr = &p.out
	// A group of its own: killing it kills what it started in its group.
	// It dies with the test binary, should that die before its cleanup.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		rd := bufio.NewReader(stdout)
		line, _ := rd.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, rd)
	}()
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("log of %s (%s):\n%s", name, p.worker(), p.out.String())
		}
	})
	select {
	case line := <-lines:
		switch {
		case strings.HasPrefix(line, "twinstac listening on "):
			p.base = strings.TrimSpace(strings.TrimPrefix(line, "twinstac listening on "))
		case strings.HasPrefix(line, "twinstac worker running"):
		default:
			t.Fatalf("%s printed %q first\n%s", name, line, p.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s was not ready within a minute\n%s", name, p.out.String())
	}
	return p
}

// worker is the name the process gives itself in the jobs it claims
// (workerName).
func (p *twinstacProcess) worker() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(p.cmd.Process.Pid)
}

// kill SIGKILLs the process and its process group, waits until it has
// exited, and returns the process groups of its descendants that are
// still alive (the phase scripts of a worker, in groups of their own).
func (p *twinstacProcess) kill(t *testing.T) []int {
	t.Helper()
	select {
	case <-p.exited:
		return nil
	default:
	}
	groups := descendantGroups(p.cmd.Process.Pid)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30 s of SIGKILL", p.name)
	}
	var alive []int
	for _, g := range groups {
		if g != p.cmd.Process.Pid && syscall.Kill(-g, 0) == nil {
			alive = append(alive, g)
		}
	}
	return alive
}

// descendantGroups returns the process groups of pid's descendants, from
// /proc.
func descendantGroups(pid int) []int {
	parent, group := map[int]int{}, map[int]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		n, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 3 {
			continue
		}
		parent[n], _ = strconv.Atoi(f[1])
		group[n], _ = strconv.Atoi(f[2])
	}
	var out []int
	seen := map[int]bool{}
	for n := range parent {
		for a := parent[n]; a > 1; a = parent[a] {
			if a == pid {
				if g := group[n]; !seen[g] {
					seen[g] = true
					out = append(out, g)
				}
				break
			}
		}
	}
	return out
}

// lockedBuffer is a buffer a process writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recoveryAPI calls a server's API as the node admin.
type recoveryAPI struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newRecoveryAPI(t *testing.T, base string) *recoveryAPI {
	t.Helper()
	return &recoveryAPI{t: t, c: apitest.Client(t, base), base: base}
}

func (a *recoveryAPI) do(method, path, ct, body string, want int) map[string]any {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, a.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+recoverySecret)
	if body != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: %d, want %d\n%s", method, path, resp.StatusCode, want, b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// publishTwin publishes twins:beat, a twin whose execute phase writes
// beats lines 0.2 s apart, then a file.
func (a *recoveryAPI) publishTwin(beats int) {
	a.t.Helper()
	const js = "application/json"
	a.do("POST", "/collections", js, `{"type":"Collection","stac_version":"1.1.0","id":"twins","description":"d","license":"other",
		"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}},"links":[]}`, 201)
	a.do("POST", "/collections/twins/items", js, `{"type":"Feature","stac_version":"1.1.0","id":"beat","geometry":null,"links":[],"assets":{},
		"properties":{"datetime":"2026-01-01T00:00:00Z","dt:kind":"digital-twin"}}`, 201)
	script := fmt.Sprintf("#!/bin/sh\nn=0\nwhile [ $n -lt %d ]; do n=$((n + 1)); echo \"beat $n\"; sleep 0.2; done\necho $n > \"$TWINSTAC_OUTPUTS/beats.txt\"\n", beats)
	a.do("PUT", "/collections/twins/items/beat/assets/execute", "text/x-shellscript", script, 200)
	a.do("PATCH", "/collections/twins/items/beat", "application/merge-patch+json", `{"assets":{"execute":{"roles":["lifecycle"]}}}`, 200)
	a.do("POST", "/collections/twins/items/beat/lifecycle", js, `{"state":"published"}`, 200)
}

// submit runs the twin and returns the job's id.
func (a *recoveryAPI) submit() string {
	a.t.Helper()
	return a.do("POST", "/processes/twins:beat/execution", "application/json", `{}`, 201)["jobID"].(string)
}

// waitSuccessful waits until the API shows the job successful.
func (a *recoveryAPI) waitSuccessful(id string, within time.Duration) map[string]any {
	a.t.Helper()
	var st map[string]any
	testdb.WaitFor(a.t, within, "job "+id+" did not succeed", every(100*time.Millisecond, func() bool {
		st = a.do("GET", "/jobs/"+id, "", "", 200)
		if s := st["status"]; s == "failed" || s == "dismissed" {
			a.t.Fatalf("job %s ended %s: %v", id, s, st)
		}
		return st["status"] == "successful"
	}))
	return st
}

// checkResult checks that the job's one result item holds the twin's
// output.
func (a *recoveryAPI) checkResult(j *jobs.Job) {
	a.t.Helper()
	if len(j.Results) != 1 {
		a.t.Fatalf("job %s has results %q, want one item", j.ID, j.Results)
	}
	c, i, ok := jobs.ParseRef(j.Results[0])
	if !ok {
		a.t.Fatalf("job %s: result %q is not collection/item", j.ID, j.Results[0])
	}
	item := a.do("GET", "/collections/"+c+"/items/"+i, "", "", 200)
	assets, _ := item["assets"].(map[string]any)
	for k := range assets {
		if strings.Contains(k, "beats") {
			return
		}
	}
	a.t.Fatalf("the result item %s lacks the twin's output: assets %v", j.Results[0], assets)
}

// TestServerRestartRetriesItsRunningJob kills a server on its in-process
// Redis while it runs a job and holds another queued: the next server's
// reconciler queues the waiting job again, and runs the one whose
// worker, and whose task, died with the server as its next attempt.
func TestServerRestartRetriesItsRunningJob(t *testing.T) {
	t.Parallel()
	e := setupRecovery(t, 0)
	serve := slices.Concat(e.args(), []string{"--addr", "127.0.0.1:0", "--admin-token", recoverySecret, "--reconcile-interval", "1s", "--workers", "1"})
	first := startTwinstac(t, "serve 1", "serve", serve...)
	api := newRecoveryAPI(t, first.base)
	api.publishTwin(50)
	running := api.submit()
	testdb.WaitFor(t, time.Minute, "the first job did not start", every(100*time.Millisecond, func() bool {
		return api.do("GET", "/jobs/"+running, "", "", 200)["status"] == "running"
	}))
	waiting := api.submit() // one job at a time: it waits
	for _, g := range first.kill(t) {
		_ = syscall.Kill(-g, syscall.SIGKILL)
	}

	second := startTwinstac(t, "serve 2", "serve", serve...)
	api = newRecoveryAPI(t, second.base)
	api.waitSuccessful(waiting, time.Minute)
	api.waitSuccessful(running, time.Minute)
	if st := api.do("GET", "/jobs/"+running, "", "", 200); st["dt:attempt"] != 2.0 {
		t.Fatalf("the job running when its server died: %v", st)
	}
}
