package workers

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twinstac/twinstac/jobs"
)

// maxLineBytes is the longest line a log keeps whole; longer ones are
// split.
const maxLineBytes = 16 << 10

// JobLog is the LogSink of a job's attempt: it splits the phases' output
// into lines and appends them to the job store in batches (every
// FlushEvery, and at Close), within the store's bound per job.
type JobLog struct {
	store    jobs.Store
	id       string
	attempt  int
	maxBytes int64

	mu      sync.Mutex
	pending []jobs.LogEntry
	stop    chan struct{}
	done    chan struct{}
	closed  sync.Once
}

// NewJobLog starts the log of a job's attempt; Close flushes it.
func NewJobLog(store jobs.Store, id string, attempt int, maxBytes int64, flushEvery time.Duration) *JobLog {
	if maxBytes <= 0 {
		maxBytes = jobs.DefaultMaxLogBytes
	}
	if flushEvery <= 0 {
		flushEvery = 250 * time.Millisecond
	}
	l := &JobLog{store: store, id: id, attempt: attempt, maxBytes: maxBytes, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.flush()
			}
		}
	}()
	return l
}

// System adds a line of the server's own (which attempt runs where, how
// a phase ended).
func (l *JobLog) System(phase, text string) {
	l.add(jobs.LogEntry{Attempt: l.attempt, Phase: phase, Stream: jobs.StreamSystem, Time: time.Now().UTC(), Text: text})
}

func (l *JobLog) add(e jobs.LogEntry) {
	l.mu.Lock()
	l.pending = append(l.pending, e)
	l.mu.Unlock()
}

// flush appends what is pending. A store that fails loses those lines:
// the run goes on, and its outcome is kept by the job row.
func (l *JobLog) flush() {
	l.mu.Lock()
	batch := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = l.store.AppendLog(ctx, l.id, batch, l.maxBytes)
}

// Close flushes the log and stops its flusher; calling it again does
// nothing.
func (l *JobLog) Close() error {
	l.closed.Do(func() {
		close(l.stop)
		<-l.done
		l.flush()
	})
	return nil
}

// Drain stops the log and returns the lines not yet written, for the
// caller to write (with the job's end); calling Close or Drain after it
// does nothing.
func (l *JobLog) Drain() []jobs.LogEntry {
	var out []jobs.LogEntry
	l.closed.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		out, l.pending = l.pending, nil
		l.mu.Unlock()
	})
	return out
}

// MaxBytes is the bound of the job's log the lines are written within.
func (l *JobLog) MaxBytes() int64 { return l.maxBytes }

// Writer implements LogSink.
func (l *JobLog) Writer(phase, stream string) io.Writer {
	return &lineWriter{log: l, phase: phase, stream: stream}
}

// lineWriter cuts one stream into lines. A last line without a newline
// is kept when the stream ends (Flush).
type lineWriter struct {
	log           *JobLog
	phase, stream string
	mu            sync.Mutex
	partial       []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.emit(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
	for len(w.partial) >= maxLineBytes {
		// Cut at a rune boundary.
		cut := maxLineBytes
		for cut > 0 && !utf8.RuneStart(w.partial[cut]) {
			cut--
		}
		w.emit(w.partial[:cut])
		w.partial = w.partial[cut:]
	}
	w.partial = append([]byte(nil), w.partial...)
	return len(p), nil
}

// storableText is s as databases keep text: valid UTF-8 without NUL
// (PostgreSQL refuses both, in text and in JSON), each offending byte
// replaced by U+FFFD.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Flush emits a last line without a newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.emit(w.partial)
		w.partial = nil
	}
}

func (w *lineWriter) emit(b []byte) {
	b = bytes.TrimSuffix(b, []byte("\r"))
	text := storableText(string(b))
	w.log.add(jobs.LogEntry{Attempt: w.log.attempt, Phase: w.phase, Stream: w.stream, Time: time.Now().UTC(), Text: text})
}
