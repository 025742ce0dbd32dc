package workers_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/workers"
)

func TestMain(m *testing.M) {
	// The local executor starts this test binary as the launcher of its
	// phase scripts, as it starts twinstac.
	workers.LaunchPhase()
	os.Exit(m.Run())
}

// logs collects the phases' output.
type logs struct {
	mu  sync.Mutex
	buf map[string]*bytes.Buffer
}

func (l *logs) Writer(phase, stream string) io.Writer { return &logWriter{l, phase + "/" + stream} }

func (l *logs) text(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buf[key]; b != nil {
		return b.String()
	}
	return ""
}

type logWriter struct {
	l   *logs
	key string
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if w.l.buf == nil {
		w.l.buf = map[string]*bytes.Buffer{}
	}
	if w.l.buf[w.key] == nil {
		w.l.buf[w.key] = &bytes.Buffer{}
	}
	return w.l.buf[w.key].Write(p)
}

// dirComponent reads a component's files from a folder on disk.
func dirComponent(t *testing.T, kind, name, dir string) workers.Component {
	t.Helper()
	c := workers.Component{Kind: kind, Name: name}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		c.Files = append(c.Files, workers.File{Path: filepath.ToSlash(rel), Open: func(context.Context) (io.ReadCloser, error) { return os.Open(p) }})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scriptTwin is a twin of inline lifecycle scripts.
func scriptTwin(name string, scripts map[string]string) workers.Component {
	c := workers.Component{Kind: workers.KindDigitalTwin, Name: name}
	for phase, body := range scripts {
		c.Files = append(c.Files, workers.File{Path: "lifecycle/" + phase, Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(body)), nil
		}})
	}
	return c
}

func newLocal(t *testing.T) *workers.Local {
	t.Helper()
	return &workers.Local{Root: t.TempDir(), PhaseTimeout: time.Minute, Grace: 2 * time.Second}
}

func run(t *testing.T, ex *workers.Local, ctx context.Context, r *workers.Run) *workers.Outcome {
	t.Helper()
	if r.JobID == "" {
		r.JobID = "job-1"
	}
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	o, err := ex.Run(ctx, r)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return o
}

func phases(o *workers.Outcome) []string {
	var out []string
	for _, p := range o.Phases {
		out = append(out, p.Phase)
	}
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var lifecycle = struct{ main, always []string }{
	[]string{workers.PhaseCreate, workers.PhaseExecute},
	[]string{workers.PhaseTerminate, workers.PhaseClean},
}

func TestWaterTankRunsAndRestores(t *testing.T) {
	t.Parallel()
	ex := newLocal(t)
	twin := dirComponent(t, workers.KindDigitalTwin, "water-tank", "../examples/water-tank")
	l := &logs{}
	o := run(t, ex, t.Context(), &workers.Run{
		Twin: twin, Inputs: map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 20, "level0": 1},
		Phases: lifecycle.main, Always: lifecycle.always, Logs: l,
	})
	if !o.Succeeded || o.Failed() != nil {
		t.Fatalf("the run failed: %+v\nstderr: %s", o.Phases, l.text("create/stderr")+l.text("execute/stderr"))
	}
	if got, want := phases(o), []string{"create", "execute", "terminate", "clean"}; !slices.Equal(got, want) {
		t.Fatalf("phases %v, want %v", got, want)
	}
	if !strings.Contains(l.text("create/stdout"), "inflow=0.5 outflow=0.2 steps=20") {
		t.Fatalf("create's output %q does not show the inputs", l.text("create/stdout"))
	}
	if !strings.Contains(l.text("terminate/stdout"), "20 steps written") {
		t.Fatalf("terminate's output: %q", l.text("terminate/stdout"))
	}
	csv := readFile(t, filepath.Join(o.Dir, "outputs", "level.csv"))
	rows := strings.Split(strings.TrimSpace(csv), "\n")
	if len(rows) != 21 || rows[0] != "t,level" || !strings.HasPrefix(rows[1], "1,1.3000") {
		t.Fatalf("level.csv has %d rows: %q ...", len(rows), rows[:min(3, len(rows))])
	}
	if len(o.Outputs) != 1 || o.Outputs[0].Path != "level.csv" || o.Outputs[0].Size != int64(len(csv)) {
		t.Fatalf("outputs %+v", o.Outputs)
	}
	if o.Usage.BytesWritten < int64(len(csv)) || o.Usage.MaxRSSBytes <= 0 || o.Usage.Wall <= 0 {
		t.Fatalf("usage %+v", o.Usage)
	}
	inputs := readFile(t, filepath.Join(o.Dir, "inputs.json"))
	if !strings.Contains(inputs, `"steps": 20`) {
		t.Fatalf("inputs.json: %s", inputs)
	}

	// The state, packed as a snapshot, starts a later run where this one
	// ended.
	var snap bytes.Buffer
	if err := workers.PackState(filepath.Join(o.Dir, "state"), &snap); err != nil {
		t.Fatal(err)
	}
	last := strings.Split(rows[20], ",")
	o2 := run(t, ex, t.Context(), &workers.Run{
		JobID: "job-2", Twin: twin, Inputs: map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 3},
		Phases: lifecycle.main, Always: lifecycle.always,
		Restore: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(snap.Bytes())), nil },
	})
	rows2 := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(o2.Dir, "outputs", "level.csv"))), "\n")
	if !o2.Succeeded || len(rows2) != 4 || !strings.HasPrefix(rows2[1], "21,") {
		t.Fatalf("restored run: succeeded %v, rows %q (the first run ended at t=%s, level %s)", o2.Succeeded, rows2, last[0], last[1])
	}
	if err := ex.Cleanup(o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.Workspace); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the workspace is still there after Cleanup: %v", err)
	}
}

func TestFailedPhaseStillTerminatesAndCleans(t *testing.T) {
	t.Parallel()
	ex := newLocal(t)
	twin := dirComponent(t, workers.KindDigitalTwin, "water-tank", "../examples/water-tank")
	l := &logs{}
	o := run(t, ex, t.Context(), &workers.Run{Twin: twin, Inputs: map[string]any{"steps": "many"},
		Phases: lifecycle.main, Always: lifecycle.always, Logs: l})
	if o.Succeeded {
		t.Fatal("a run whose create phase failed succeeded")
	}
	f := o.Failed()
	if f == nil || f.Phase != "create" || f.ExitCode != 2 {
		t.Fatalf("failed phase %+v, want create with exit status 2", f)
	}
	if got, want := phases(o), []string{"create", "terminate", "clean"}; !slices.Equal(got, want) {
		t.Fatalf("phases %v, want %v", got, want)
	}
	if !strings.Contains(l.text("create/stderr"), "steps must be a whole number") {
		t.Fatalf("create's stderr: %q", l.text("create/stderr"))
	}
}

func TestPhaseEnvironment(t *testing.T) {
	t.Parallel()
	ex := newLocal(t)
	twin := scriptTwin("env", map[string]string{"execute": "#!/bin/sh\nenv | sort > \"$TWINSTAC_OUTPUTS/env.txt\"\npwd > \"$TWINSTAC_OUTPUTS/pwd.txt\"\n"})
	o := run(t, ex, t.Context(), &workers.Run{JobID: "j-env", Twin: twin, Phases: []string{"execute"},
		Inputs: map[string]any{"my-param": 1.5, "Name": "tank A", "on": true, "list": []any{1, 2}, "obj": map[string]any{"a": 1}}})
	if !o.Succeeded {
		t.Fatalf("%+v", o.Phases)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(o.Dir, "outputs", "env.txt"))), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	want := map[string]string{
		"TWINSTAC_INPUT_MY_PARAM": "1.5", "TWINSTAC_INPUT_NAME": "tank A", "TWINSTAC_INPUT_ON": "true",
		"TWINSTAC_JOB_ID": "j-env", "TWINSTAC_INPUTS": filepath.Join(o.Dir, "inputs.json"),
		"TWINSTAC_OUTPUTS": filepath.Join(o.Dir, "outputs"), "TWINSTAC_STATE": filepath.Join(o.Dir, "state"),
		"TWINSTAC_WORKSPACE": o.Workspace,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	// Nothing of the server's environment (its database URL, its
	// secrets) reaches a phase, and arrays and objects are only in
	// inputs.json.
	allowed := []string{"PATH", "HOME", "TMPDIR", "LANG", "PWD", "SHLVL", "_", "OLDPWD"}
	for k := range env {
		if _, ok := want[k]; !ok && !slices.Contains(allowed, k) {
			t.Errorf("the phase sees %s", k)
		}
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(o.Dir, "outputs", "pwd.txt"))); got != o.Dir {
		t.Errorf("working directory %q, want the twin's folder %q", got, o.Dir)
	}
	if !strings.HasSuffix(o.Dir, filepath.Join("digital_twins", "env")) {
		t.Errorf("twin folder %s", o.Dir)
	}
}

// waitGone waits until no process has pid.
func waitGone(t *testing.T, pid string) {
	t.Helper()
	testdb.WaitFor(t, 10*time.Second, "process "+pid+" is still running", func() bool {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		// A zombie (state Z) is dead; its parent has not reaped it yet.
		return err != nil || strings.Contains(string(b), ") Z ")
	})
}

func TestTimeoutStopsTheWholeProcessGroup(t *testing.T) {
	t.Parallel()
	ex := newLocal(t)
	ex.PhaseTimeout = 2 * time.Second
	twin := scriptTwin("slow", map[string]string{
		"execute": "#!/bin/sh\nsleep 300 &\necho $! > \"$TWINSTAC_OUTPUTS/child.pid\"\nsleep 300\n",
		"clean":   "#!/bin/sh\necho cleaned\n",
	})
	l := &logs{}
	o := run(t, ex, t.Context(), &workers.Run{Twin: twin, Phases: []string{"execute"}, Always: []string{"clean"}, Logs: l})
	f := o.Failed()
	if f == nil || !f.TimedOut || f.Signal == "" {
		t.Fatalf("execute: %+v, want timed out and ended by a signal", f)
	}
	if !strings.Contains(l.text("clean/stdout"), "cleaned") {
		t.Fatal("clean did not run after the timeout")
	}
	waitGone(t, strings.TrimSpace(readFile(t, filepath.Join(o.Dir, "outputs", "child.pid"))))
}

func TestBackgroundChildrenEndWithTheirPhase(t *testing.T) {
	t.Parallel()
	ex := newLocal(t)
	twin := scriptTwin("bg", map[string]string{"execute": "#!/bin/sh\nsleep 300 &\necho $! > \"$TWINSTAC_OUTPUTS/child.pid\"\necho started\n"})
	o := run(t, ex, t.Context(), &workers.Run{Twin: twin, Phases: []string{"execute"}})
	if !o.Succeeded {
		t.Fatalf("%+v", o.Phases)
	}
	waitGone(t, strings.TrimSpace(readFile(t, filepath.Join(o.Dir, "outputs", "child.pid"))))
}

// cancelOn cancels once a phase's log shows text (the test's deadline
// ends a wait that never does).
func cancelOn(ctx context.Context, l *logs, key, text string, cancel context.CancelFunc) {
	for !strings.Contains(l.text(key), text) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
}

func TestCancelStopsGracefullyThenKills(t *testing.T) {
	t.Parallel()
	t.Run("heartbeat stops on SIGTERM", func(t *testing.T) {
		t.Parallel()
		ex := newLocal(t)
		twin := dirComponent(t, workers.KindDigitalTwin, "heartbeat", "../examples/heartbeat")
		l := &logs{}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go cancelOn(ctx, l, "execute/stdout", "beat 2", cancel)
		o := run(t, ex, ctx, &workers.Run{Twin: twin, Inputs: map[string]any{"interval": 0.05},
			Phases: lifecycle.main, Always: lifecycle.always, Logs: l})
		f := o.Failed()
		if f == nil || f.Phase != "execute" || !f.Stopped || f.ExitCode != 143 {
			t.Fatalf("execute: %+v, want stopped with status 143 (its TERM trap)", f)
		}
		if !strings.Contains(l.text("execute/stdout"), "stopped after") || !strings.Contains(l.text("clean/stdout"), "cleaned up") {
			t.Fatalf("logs: execute %q, clean %q", l.text("execute/stdout"), l.text("clean/stdout"))
		}
		if beats := readFile(t, filepath.Join(o.Dir, "outputs", "beats.csv")); strings.Count(beats, "\n") < 3 {
			t.Fatalf("beats.csv: %q", beats)
		}
	})
	t.Run("a phase that ignores SIGTERM is killed after the grace period", func(t *testing.T) {
		t.Parallel()
		ex := newLocal(t)
		ex.Grace = 200 * time.Millisecond
		twin := scriptTwin("stubborn", map[string]string{"execute": "#!/bin/sh\ntrap '' TERM\necho ready\nwhile :; do sleep 1; done\n"})
		l := &logs{}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go cancelOn(ctx, l, "execute/stdout", "ready", cancel)
		o := run(t, ex, ctx, &workers.Run{Twin: twin, Phases: []string{"execute"}, Logs: l})
		if f := o.Failed(); f == nil || !f.Stopped || f.Signal != "killed" {
			t.Fatalf("execute: %+v, want stopped by SIGKILL", f)
		}
	})
}

func TestLimits(t *testing.T) {
	t.Parallel()
	for _, launcher := range []string{workers.LaunchPrlimit, workers.LaunchSelf} {
		t.Run(launcher, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath("prlimit"); err != nil && launcher == workers.LaunchPrlimit {
				if os.Getenv("TWINSTAC_TEST_REQUIRE_SERVICES") == "1" {
					t.Fatal("prlimit (util-linux) is not installed, and TWINSTAC_TEST_REQUIRE_SERVICES=1 requires it")
				}
				t.Skip("prlimit (util-linux) is not installed; set TWINSTAC_TEST_REQUIRE_SERVICES=1 to fail instead; the self launcher is tested beside")
			}
			ex := newLocal(t)
			ex.Launcher = launcher
			ex.Limits = workers.Limits{FileSizeBytes: 4096, OpenFiles: 64}
			twin := scriptTwin("big", map[string]string{"execute": "#!/bin/sh\nulimit -n > \"$TWINSTAC_OUTPUTS/nofile\"\nhead -c 100000 /dev/zero > \"$TWINSTAC_OUTPUTS/big\"\necho done\n"})
			l := &logs{}
			o := run(t, ex, t.Context(), &workers.Run{Twin: twin, Phases: []string{"execute"}, Logs: l})
			if got := strings.TrimSpace(readFile(t, filepath.Join(o.Dir, "outputs", "nofile"))); got != "64" {
				t.Errorf("open files limit %s, want 64", got)
			}
			st, err := os.Stat(filepath.Join(o.Dir, "outputs", "big"))
			if err != nil || st.Size() > 4096 {
				t.Fatalf("the phase wrote a file past its size limit: %v, %v", st, err)
			}
			// head is killed by SIGXFSZ; the script goes on to its end.
			if !o.Succeeded || !strings.Contains(l.text("execute/stdout"), "done") {
				t.Fatalf("%+v %q", o.Phases, l.text("execute/stderr"))
			}

			ex2 := newLocal(t)
			ex2.Launcher = launcher
			ex2.Limits = workers.Limits{CPUSeconds: 1}
			spin := scriptTwin("spin", map[string]string{"execute": "while :; do :; done\n"}) // no #!: run by /bin/sh
			o2 := run(t, ex2, t.Context(), &workers.Run{Twin: spin, Phases: []string{"execute"}})
			if f := o2.Failed(); f == nil || f.TimedOut || f.Signal == "" {
				t.Fatalf("a phase past its CPU time: %+v, want ended by a signal", f)
			}
		})
	}
}

func TestScriptWithoutShebang(t *testing.T) {
	t.Parallel()
	ex := newLocal(t)
	twin := scriptTwin("plain", map[string]string{"execute": "echo plain > \"$TWINSTAC_OUTPUTS/out\"\n"})
	o := run(t, ex, t.Context(), &workers.Run{Twin: twin, Phases: []string{"execute"}})
	if !o.Succeeded || strings.TrimSpace(readFile(t, filepath.Join(o.Dir, "outputs", "out"))) != "plain" {
		t.Fatalf("%+v", o.Phases)
	}
}

func TestLayoutIsChecked(t *testing.T) {
	t.Parallel()
	ex := newLocal(t)
	open := func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }
	for name, r := range map[string]*workers.Run{
		"a path out of the folder": {Twin: workers.Component{Kind: workers.KindDigitalTwin, Name: "t", Files: []workers.File{{Path: "../../escape", Open: open}}}},
		"an absolute path":         {Twin: workers.Component{Kind: workers.KindDigitalTwin, Name: "t", Files: []workers.File{{Path: "/etc/x", Open: open}}}},
		"a name with a slash":      {Twin: workers.Component{Kind: workers.KindDigitalTwin, Name: "a/b"}},
		"a twin of another kind":   {Twin: workers.Component{Kind: workers.KindModel, Name: "t"}},
		"an unknown kind":          {Twin: workers.Component{Kind: workers.KindDigitalTwin, Name: "t"}, Uses: []workers.Component{{Kind: "secrets", Name: "s"}}},
		"a job id with a slash":    {JobID: "../j", Twin: workers.Component{Kind: workers.KindDigitalTwin, Name: "t"}},
	} {
		if r.JobID == "" {
			r.JobID = "j"
		}
		r.Attempt = 1
		if _, err := ex.Run(t.Context(), r); err == nil {
			t.Errorf("%s: Run laid it out", name)
		}
	}
	if _, err := os.Stat(filepath.Join(ex.Root, "escape")); err == nil {
		t.Fatal("a file was written outside the workspace")
	}

	// Items a twin uses go to their kind's folder; a symbolic link the
	// twin makes in outputs/ is not an output.
	twin := scriptTwin("t", map[string]string{"execute": "#!/bin/sh\ncat ../../models/m/weights.txt > \"$TWINSTAC_OUTPUTS/copy\"\nln -s /etc/passwd \"$TWINSTAC_OUTPUTS/passwd\"\n"})
	model := workers.Component{Kind: workers.KindModel, Name: "m", Files: []workers.File{{Path: "weights.txt", Open: open}}}
	o := run(t, ex, t.Context(), &workers.Run{JobID: "j2", Twin: twin, Uses: []workers.Component{model}, Phases: []string{"execute"}})
	if !o.Succeeded || len(o.Outputs) != 1 || o.Outputs[0].Path != "copy" || o.Outputs[0].Size != 1 {
		t.Fatalf("phases %+v, outputs %+v", o.Phases, o.Outputs)
	}
}

func TestUnpackStateRefusesEscapes(t *testing.T) {
	t.Parallel()
	for name, hdr := range map[string]*tar.Header{
		"parent":   {Typeflag: tar.TypeReg, Name: "../evil", Size: 1, Mode: 0o644},
		"absolute": {Typeflag: tar.TypeReg, Name: "/tmp/evil", Size: 1, Mode: 0o644},
		"symlink":  {Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/etc/passwd"},
	} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			_, _ = tw.Write([]byte("x"))
		}
		_ = tw.Close()
		_ = gz.Close()
		dir := t.TempDir()
		if _, err := workers.UnpackState(&buf, filepath.Join(dir, "state")); err == nil {
			t.Errorf("%s: unpacked", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
			t.Errorf("%s: a file was written outside the state folder", name)
		}
	}
}

// TestPackStateWhileWritten: a twin that replaces its state files whole
// while it runs is packed whole, every time, whatever it renames meanwhile.
func TestPackStateWhileWritten(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := filepath.Join(dir, "n.new")
			if err := os.WriteFile(tmp, []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(dir, "n")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for range 300 {
		var b bytes.Buffer
		if err := workers.PackState(dir, &b); err != nil {
			t.Fatalf("packing a state being written: %v", err)
		}
		out := t.TempDir()
		if _, err := workers.UnpackState(&b, out); err != nil {
			t.Fatal(err)
		}
		if n, err := os.ReadFile(filepath.Join(out, "n")); err == nil {
			if _, err := strconv.Atoi(strings.TrimSpace(string(n))); err != nil {
				t.Fatalf("a state file packed half written: %q", n)
			}
		}
	}
}

// TestRelativeRoot: a workspace folder given relative to the server's
// working folder (the default data folder is ./twinstac-data) runs the
// phases all the same, with absolute paths.
func TestRelativeRoot(t *testing.T) {
	t.Chdir(t.TempDir())
	ex := &workers.Local{Root: filepath.Join("twinstac-data", "work"), PhaseTimeout: time.Minute}
	twin := scriptTwin("rel", map[string]string{"execute": "#!/bin/sh\necho \"$TWINSTAC_OUTPUTS\" > \"$TWINSTAC_OUTPUTS/where.txt\"\n"})
	o := run(t, ex, t.Context(), &workers.Run{JobID: "j-rel", Twin: twin, Phases: []string{"execute"}})
	if !o.Succeeded {
		t.Fatalf("a relative workspace folder: %+v", o.Phases)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(o.Dir, "outputs", "where.txt"))); !filepath.IsAbs(got) || !filepath.IsAbs(o.Dir) {
		t.Fatalf("paths %q and %q are not absolute", got, o.Dir)
	}
}
