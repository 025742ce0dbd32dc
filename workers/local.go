package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Local runs phases as processes on this machine, each in a process
// group of its own and under resource limits.
type Local struct {
	// Root holds the workspaces: Root/<job>/<attempt>.
	Root string
	// PhaseTimeout bounds each phase (default 1 hour). The Always phases
	// of a cancelled or timed-out run get at most AlwaysTimeout (default
	// 1 minute).
	PhaseTimeout, AlwaysTimeout time.Duration
	// Grace is how long a stopped phase has between SIGTERM and SIGKILL
	// (default 10 s).
	Grace time.Duration
	// Limits apply to every phase process.
	Limits Limits
	// Launcher says how a phase starts under Limits: LaunchPrlimit
	// (util-linux prlimit sets them and execs the script, about 10 ms),
	// LaunchSelf (this executable, whose main calls LaunchPhase first,
	// sets them and execs it: some 40 ms of start-up), or "" for the
	// quickest that works: the script itself when no limit is set,
	// prlimit when it is installed, else this executable. Either way the
	// limits hold from the script's first instruction.
	Launcher string
	// Path is the PATH of the phases (default /usr/local/bin:/usr/bin:/bin).
	// The phases see nothing else of the server's environment.
	Path string
}

var _ Executor = (*Local)(nil)

// Limits are resource limits of a phase process and its children
// (setrlimit). Zero leaves one unlimited.
type Limits struct {
	// CPUSeconds is the CPU time a phase process may use (RLIMIT_CPU).
	CPUSeconds uint64
	// MemoryBytes is its address space (RLIMIT_AS).
	MemoryBytes uint64
	// OpenFiles is how many files it may hold open (RLIMIT_NOFILE).
	OpenFiles uint64
	// FileSizeBytes is the largest file it may write (RLIMIT_FSIZE).
	FileSizeBytes uint64
}

// Environment variables a phase sees.
const (
	EnvInputs      = "TWINSTAC_INPUTS"
	EnvOutputs     = "TWINSTAC_OUTPUTS"
	EnvState       = "TWINSTAC_STATE"
	EnvWorkspace   = "TWINSTAC_WORKSPACE"
	EnvJobID       = "TWINSTAC_JOB_ID"
	EnvInputPrefix = "TWINSTAC_INPUT_"
)

// Folders of the twin's folder.
const (
	InputsFile   = "inputs.json"
	OutputsDir   = "outputs"
	StateDir     = "state"
	LifecycleDir = "lifecycle"
)

func (l *Local) phaseTimeout() time.Duration { return orDefault(l.PhaseTimeout, time.Hour) }

// alwaysTimeout is the time the Always phases of a failed, timed-out or
// cancelled run get: their own, not the phase timeout that may just have
// run out.
func (l *Local) alwaysTimeout() time.Duration { return orDefault(l.AlwaysTimeout, time.Minute) }
func (l *Local) grace() time.Duration         { return orDefault(l.Grace, 10*time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run implements Executor.
func (l *Local) Run(ctx context.Context, r *Run) (*Outcome, error) {
	ws, err := l.workspace(r)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	dir := filepath.Join(ws, KindDigitalTwin, r.Twin.Name)
	out := &Outcome{Workspace: ws, Dir: dir, Succeeded: true}
	laidOut, err := layOut(ctx, ws, r)
	if err != nil {
		return nil, err
	}
	env, err := phaseEnv(l.pathEnv(), ws, dir, r)
	if err != nil {
		return nil, err
	}
	if r.Live != nil {
		r.Live(&localWorkspace{l: l, dir: dir, env: env, logs: r.Logs})
	}
	var usage Usage
	for _, ph := range r.Phases {
		if ctx.Err() != nil || !out.Succeeded {
			break
		}
		res, ran := l.phase(ctx, dir, env, ph, l.phaseTimeout(), r.Logs, &usage)
		if !ran {
			continue
		}
		out.Phases = append(out.Phases, res)
		if !res.OK() {
			out.Succeeded = false
		}
	}
	if ctx.Err() != nil {
		out.Succeeded = false
	}
	// The Always phases run even when the run was cancelled: they get a
	// context of their own, and after a failure the Always timeout.
	for _, ph := range r.Always {
		timeout := l.phaseTimeout()
		if ctx.Err() != nil || !out.Succeeded {
			timeout = l.alwaysTimeout()
		}
		res, ran := l.phase(context.WithoutCancel(ctx), dir, env, ph, timeout, r.Logs, &usage)
		if ran {
			res.Always = true
			out.Phases = append(out.Phases, res)
		}
	}
	usage.Wall = time.Since(start)
	written, err := treeSize(ws)
	if err != nil {
		return nil, err
	}
	usage.BytesWritten = max(written-laidOut, 0)
	out.Usage = usage
	if out.Outputs, err = listOutputs(filepath.Join(dir, OutputsDir)); err != nil {
		return nil, err
	}
	return out, nil
}

// localWorkspace is the Workspace of a local attempt.
type localWorkspace struct {
	l    *Local
	dir  string
	env  []string
	logs LogSink
}

func (w *localWorkspace) Dir() string { return w.dir }

func (w *localWorkspace) RunPhase(ctx context.Context, phase string) (PhaseResult, bool) {
	var u Usage
	return w.l.phase(ctx, w.dir, w.env, phase, w.l.phaseTimeout(), w.logs, &u)
}

// Cleanup removes the workspace of an outcome.
func (l *Local) Cleanup(o *Outcome) error {
	if o == nil || o.Workspace == "" {
		return nil
	}
	return os.RemoveAll(o.Workspace)
}

func (l *Local) pathEnv() string {
	if l.Path != "" {
		return l.Path
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

// safeName matches the names that may become a folder of the workspace.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$`)

// workspace creates the attempt's empty workspace.
func (l *Local) workspace(r *Run) (string, error) {
	if !safeName.MatchString(r.JobID) {
		return "", fmt.Errorf("job id %q cannot name a workspace", r.JobID)
	}
	if r.Attempt < 1 {
		return "", fmt.Errorf("attempt %d: attempts count from 1", r.Attempt)
	}
	label := fmt.Sprint(r.Attempt)
	if r.Label != "" {
		if !safeName.MatchString(r.Label) {
			return "", fmt.Errorf("label %q cannot name a workspace", r.Label)
		}
		label = r.Label
	}
	// Absolute, whatever the server's working folder: the phases run in
	// the twin's folder and are given their paths.
	root, err := filepath.Abs(l.Root)
	if err != nil {
		return "", err
	}
	ws := filepath.Join(root, r.JobID, label)
	// A workspace left by an earlier try of the same attempt (a crash)
	// is not reused.
	if err := os.RemoveAll(ws); err != nil {
		return "", err
	}
	if err := os.MkdirAll(ws, 0o750); err != nil {
		return "", err
	}
	return ws, nil
}

// layOut writes the components' files, inputs.json, the empty outputs/
// and state/ folders and the restored state, and returns the bytes it
// wrote.
func layOut(ctx context.Context, ws string, r *Run) (int64, error) {
	if r.Twin.Kind != KindDigitalTwin {
		return 0, fmt.Errorf("the twin's kind is %q, not %q", r.Twin.Kind, KindDigitalTwin)
	}
	seen := map[string]bool{}
	var total int64
	for _, c := range append([]Component{r.Twin}, r.Uses...) {
		switch c.Kind {
		case KindDigitalTwin, KindModel, KindTool, KindData, KindFunction:
		default:
			return 0, fmt.Errorf("component %q: unknown kind %q", c.Name, c.Kind)
		}
		if !safeName.MatchString(c.Name) {
			return 0, fmt.Errorf("component name %q cannot name a folder", c.Name)
		}
		folder := c.Kind + "/" + c.Name
		if seen[folder] {
			return 0, fmt.Errorf("two components lay out %s", folder)
		}
		seen[folder] = true
		for _, f := range c.Files {
			n, err := writeFile(ctx, filepath.Join(ws, filepath.FromSlash(folder)), f)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", folder, err)
			}
			total += n
		}
	}
	dir := filepath.Join(ws, KindDigitalTwin, r.Twin.Name)
	for _, d := range []string{dir, filepath.Join(dir, OutputsDir), filepath.Join(dir, StateDir), filepath.Join(ws, "tmp")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return 0, err
		}
	}
	inputs := r.Inputs
	if inputs == nil {
		inputs = map[string]any{}
	}
	b, err := json.MarshalIndent(inputs, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("inputs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, InputsFile), append(b, '\n'), 0o640); err != nil {
		return 0, err
	}
	total += int64(len(b) + 1)
	if r.Restore != nil {
		rc, err := r.Restore(ctx)
		if err != nil {
			return 0, fmt.Errorf("restore: %w", err)
		}
		n, err := UnpackState(rc, filepath.Join(dir, StateDir))
		_ = rc.Close()
		if err != nil {
			return 0, fmt.Errorf("restore: %w", err)
		}
		total += n
	}
	return total, nil
}

// cleanPath returns a component-relative file path, or an error for one
// that is absolute or leaves the folder.
func cleanPath(p string) (string, error) {
	c := path.Clean(p)
	if p == "" || path.IsAbs(p) || c == "." || c == ".." || strings.HasPrefix(c, "../") || strings.Contains(p, "\\") {
		return "", fmt.Errorf("file path %q is not a relative path inside the folder", p)
	}
	return c, nil
}

func writeFile(ctx context.Context, folder string, f File) (int64, error) {
	p, err := cleanPath(f.Path)
	if err != nil {
		return 0, err
	}
	dst := filepath.Join(folder, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return 0, err
	}
	mode := os.FileMode(0o640)
	if f.Executable || strings.HasPrefix(p, LifecycleDir+"/") {
		mode = 0o750
	}
	rc, err := f.Open(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	defer func() { _ = rc.Close() }()
	w, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, rc)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return n, nil
}

// inputEnvName turns an input's name into its variable's suffix.
var nonVarChar = regexp.MustCompile(`[^A-Z0-9_]`)

// phaseEnv is the environment of every phase: nothing of the server's.
func phaseEnv(pathEnv, ws, dir string, r *Run) ([]string, error) {
	env := []string{
		"PATH=" + pathEnv,
		"HOME=" + ws,
		"TMPDIR=" + filepath.Join(ws, "tmp"),
		"LANG=C.UTF-8",
		EnvInputs + "=" + filepath.Join(dir, InputsFile),
		EnvOutputs + "=" + filepath.Join(dir, OutputsDir),
		EnvState + "=" + filepath.Join(dir, StateDir),
		EnvWorkspace + "=" + ws,
		EnvJobID + "=" + r.JobID,
	}
	names := make([]string, 0, len(r.Inputs))
	for k := range r.Inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var s string
		switch v := r.Inputs[k].(type) {
		case string:
			s = v
		case bool, float64, float32, int, int64, json.Number:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			s = string(b)
		default:
			continue // objects, arrays and null are in inputs.json only
		}
		if strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("input %q holds a NUL character, which no environment variable can", k)
		}
		env = append(env, EnvInputPrefix+nonVarChar.ReplaceAllString(strings.ToUpper(k), "_")+"="+s)
	}
	return env, nil
}

// phase runs one phase; ran is false when the twin has no script for it.
func (l *Local) phase(ctx context.Context, dir string, env []string, name string, timeout time.Duration, logs LogSink, usage *Usage) (res PhaseResult, ran bool) {
	script := filepath.Join(dir, LifecycleDir, name)
	if p, err := cleanPath(LifecycleDir + "/" + name); err != nil || p != LifecycleDir+"/"+name {
		return PhaseResult{Phase: name, Error: "not a phase name", Started: time.Now(), Ended: time.Now()}, true
	}
	if st, err := os.Lstat(script); err != nil || !st.Mode().IsRegular() {
		return PhaseResult{}, false
	}
	res = PhaseResult{Phase: name, Started: time.Now()}
	defer func() { res.Ended = time.Now() }()
	argv, extraEnv, err := l.launch(script)
	if err != nil {
		res.Error = err.Error()
		return res, true
	}
	stdout, stderr := io.Discard, io.Discard
	if logs != nil {
		stdout, stderr = logs.Writer(name, "stdout"), logs.Writer(name, "stderr")
	}
	newCmd := func() *exec.Cmd {
		c := exec.Command(argv[0], argv[1:]...)
		c.Dir = dir
		c.Env = append(append([]string(nil), env...), extraEnv...)
		// Its own process group, so that a stop reaches all of it.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return c
	}
	cmd := newCmd()
	// Pipes of our own: the phase's background children may hold them
	// open after it exits, and are killed then (see below).
	var copies sync.WaitGroup
	outR, outW, err := os.Pipe()
	if err != nil {
		res.Error = err.Error()
		return res, true
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		res.Error = err.Error()
		return res, true
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	copyOut := func(r *os.File, w io.Writer) {
		defer copies.Done()
		_, _ = io.Copy(w, r)
		_ = r.Close()
	}
	copies.Add(2)
	go copyOut(outR, stdout)
	go copyOut(errR, stderr)
	err = cmd.Start()
	// A script just written may be "busy": a process forked elsewhere
	// in this server at that moment holds the write descriptor until it
	// execs (ETXTBSY). That passes within milliseconds.
	for try := 0; errors.Is(err, syscall.ETXTBSY) && try < 20; try++ {
		time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
		cmd = newCmd()
		cmd.Stdout, cmd.Stderr = outW, errW
		err = cmd.Start()
	}
	_ = outW.Close()
	_ = errW.Close()
	if err != nil {
		res.Error = err.Error()
		copies.Wait()
		return res, true
	}
	pgid := cmd.Process.Pid
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
			return
		case <-pctx.Done():
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(l.grace())
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	werr := cmd.Wait()
	close(exited)
	// What the phase left running in its group goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	copies.Wait()
	for _, w := range []io.Writer{stdout, stderr} {
		if f, ok := w.(interface{ Flush() }); ok {
			f.Flush()
		}
	}
	switch {
	case errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		res.TimedOut = true
	case ctx.Err() != nil:
		res.Stopped = true
	}
	st := cmd.ProcessState
	res.ExitCode = st.ExitCode()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = ws.Signal().String()
	}
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		usage.UserCPU += time.Duration(ru.Utime.Nano())
		usage.SysCPU += time.Duration(ru.Stime.Nano())
		usage.MaxRSSBytes = max(usage.MaxRSSBytes, ru.Maxrss*1024)
	}
	var exitErr *exec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) {
		res.Error = werr.Error()
	}
	return res, true
}

// Launchers of Local.Launcher.
const (
	LaunchPrlimit = "prlimit"
	LaunchSelf    = "self"
)

// prlimitPath is where prlimit is, "" when it is not installed.
var prlimitPath = sync.OnceValue(func() string {
	p, _ := exec.LookPath("prlimit")
	return p
})

// launch returns the command line that starts a phase script under the
// limits, and what it adds to the environment.
func (l *Local) launch(script string) (argv, env []string, err error) {
	direct := []string{script}
	if !HasShebang(script) {
		direct = []string{"/bin/sh", script}
	}
	how := l.Launcher
	if how == "" {
		switch {
		case l.Limits == (Limits{}):
			return direct, nil, nil
		case prlimitPath() != "":
			how = LaunchPrlimit
		default:
			how = LaunchSelf
		}
	}
	switch how {
	case LaunchPrlimit:
		p := prlimitPath()
		if p == "" {
			return nil, nil, fmt.Errorf("prlimit is not installed")
		}
		argv = []string{p}
		for _, x := range []struct {
			flag string
			n    uint64
		}{{"--cpu", l.Limits.CPUSeconds}, {"--as", l.Limits.MemoryBytes}, {"--nofile", l.Limits.OpenFiles}, {"--fsize", l.Limits.FileSizeBytes}} {
			if x.n > 0 {
				argv = append(argv, fmt.Sprintf("%s=%d:%d", x.flag, x.n, x.n))
			}
		}
		return append(append(argv, "--"), direct...), nil, nil
	case LaunchSelf:
		exe, err := os.Executable()
		if err != nil {
			return nil, nil, err
		}
		return []string{exe, script}, []string{launchEnv + "=" + l.Limits.encode()}, nil
	default:
		return nil, nil, fmt.Errorf("unknown launcher %q", how)
	}
}

// HasShebang reports whether a file starts with "#!": a script the
// local executor runs as it says; one that does not runs with /bin/sh.
func HasShebang(script string) bool {
	f, err := os.Open(script)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, 2)
	n, _ := io.ReadFull(f, head)
	return n == 2 && string(head) == "#!"
}

// treeSize returns the bytes in the regular files under dir.
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// listOutputs lists the regular files under dir; symbolic links and
// other special files are not outputs.
func listOutputs(dir string) ([]OutputFile, error) {
	var out []OutputFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return fs.SkipAll
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, OutputFile{Path: filepath.ToSlash(rel), Size: info.Size()})
		return nil
	})
	return out, err
}
