package workers

import (
	"context"
	"io"
	"time"
)

// Executor runs one attempt of a job.
type Executor interface {
	// Run lays out a fresh workspace for r, runs r.Phases in order while
	// they succeed and then r.Always whatever happened, and reports each
	// phase and what the twin wrote. A phase that fails, times out or is
	// stopped is a result, not an error: Run returns an error only when
	// the attempt could not be run at all (a file could not be fetched,
	// the workspace could not be written). Cancelling ctx stops the
	// running phase (its whole process group) and skips the rest but the
	// Always phases, which get their own short deadline.
	Run(ctx context.Context, r *Run) (*Outcome, error)
	// Cleanup removes what an outcome left (its workspace), once its
	// results are taken.
	Cleanup(o *Outcome) error
}

// Phase names of the DTaaS lifecycle. A twin may have any subset of them
// as lifecycle scripts, and others.
const (
	PhaseCreate    = "create"
	PhaseExecute   = "execute"
	PhaseAnalyze   = "analyze"
	PhaseEvolve    = "evolve"
	PhaseSave      = "save"
	PhaseTerminate = "terminate"
	PhaseClean     = "clean"
)

// Library folders of a workspace, one per kind of asset (the layout of a
// DTaaS user's library).
const (
	KindDigitalTwin = "digital_twins"
	KindModel       = "models"
	KindTool        = "tools"
	KindData        = "data"
	KindFunction    = "functions"
)

// Run is one attempt of a job.
type Run struct {
	// JobID names the job (TWINSTAC_JOB_ID); Attempt counts from 1. Each
	// attempt runs in a workspace of its own.
	JobID   string
	Attempt int
	// Twin is the digital twin (Kind KindDigitalTwin); its folder is the
	// phases' working directory. Its lifecycle scripts are the files
	// lifecycle/<phase>.
	Twin Component
	// Uses are the items the twin is built from (its dt:uses links),
	// each laid out in its kind's folder.
	Uses []Component
	// Inputs are the execution's inputs, written to inputs.json in the
	// twin's folder; each top-level scalar is also in the environment.
	Inputs map[string]any
	// Phases run in order while they succeed; Always run after them in
	// any case (terminate and clean). A phase without a script is
	// skipped.
	Phases, Always []string
	// Restore, when set, is a state archive (see PackState) unpacked
	// into the twin's state/ folder before the first phase.
	Restore func(ctx context.Context) (io.ReadCloser, error)
	// Logs receives the phases' output; nil discards it.
	Logs LogSink
	// Label, when set, names the workspace instead of the attempt
	// number (a save made apart from the job's attempts).
	Label string
	// Live, when set, is called once the workspace is laid out, with a
	// handle on it that stays valid until Cleanup: saves asked while the
	// job runs use it.
	Live func(Workspace)
}

// Workspace is an attempt's workspace while the attempt runs.
type Workspace interface {
	// Dir is the twin's folder, which holds outputs/ and state/.
	Dir() string
	// RunPhase runs one of the twin's lifecycle scripts now, beside the
	// running phase, with the same environment; ran is false when the
	// twin has no such script.
	RunPhase(ctx context.Context, phase string) (res PhaseResult, ran bool)
}

// Component is a folder of the workspace: a twin, or an item it uses.
type Component struct {
	// Kind is the library folder (KindDigitalTwin, KindModel, ...).
	Kind string
	// Name is the folder's name within Kind.
	Name  string
	Files []File
}

// File is one file of a component.
type File struct {
	// Path is where the file goes, relative to the component's folder,
	// slash-separated; it may not leave the folder.
	Path string
	// Executable marks scripts (lifecycle files are run whatever it says).
	Executable bool
	// Open returns the file's content.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// LogSink receives what the phases write.
type LogSink interface {
	// Writer returns where a phase's stdout or stderr (stream "stdout" or
	// "stderr") goes. The two streams of a phase are written from
	// different goroutines.
	Writer(phase, stream string) io.Writer
}

// Outcome is what an attempt did.
type Outcome struct {
	// Workspace is the attempt's workspace and Dir the twin's folder in
	// it, which holds outputs/ and state/. The workspace stays until
	// the executor's Cleanup removes it, so that results can be taken.
	Workspace, Dir string
	// Phases are the phases that ran, in order.
	Phases []PhaseResult
	// Succeeded is whether every phase of Run.Phases that ran succeeded
	// (a failing Always phase is reported but does not fail the run).
	Succeeded bool
	// Outputs are the files under outputs/, by path relative to it.
	Outputs []OutputFile
	Usage   Usage
}

// Failed returns the first phase of the run's Phases that failed, or nil.
func (o *Outcome) Failed() *PhaseResult {
	for i := range o.Phases {
		if !o.Phases[i].Always && !o.Phases[i].OK() {
			return &o.Phases[i]
		}
	}
	return nil
}

// PhaseResult is how one phase ended.
type PhaseResult struct {
	Phase string
	// Always marks a phase of Run.Always.
	Always bool
	// ExitCode is the script's exit status (-1 when it was killed by a
	// signal, named in Signal).
	ExitCode int
	Signal   string
	// TimedOut: the phase ran past its timeout and was stopped. Stopped:
	// the run was cancelled (the job dismissed) while it ran.
	TimedOut, Stopped bool
	// Error is why the phase could not start, if it could not.
	Error          string
	Started, Ended time.Time
}

// OK reports whether the phase succeeded.
func (p *PhaseResult) OK() bool {
	return p.ExitCode == 0 && p.Signal == "" && !p.TimedOut && !p.Stopped && p.Error == ""
}

// OutputFile is a file the twin wrote under outputs/.
type OutputFile struct {
	Path string
	Size int64
}

// Usage is what an attempt consumed, over all its phases.
type Usage struct {
	Wall            time.Duration
	UserCPU, SysCPU time.Duration
	MaxRSSBytes     int64
	BytesWritten    int64
}
