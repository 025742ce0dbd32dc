package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/twinstac/twinstac/jobs"
)

// LogLine is one line of a job's log.
type LogLine struct {
	Seq     int64     `json:"seq" doc:"The line's place in the log; pass it as after (or Last-Event-ID) to read on from it."`
	Attempt int       `json:"attempt"`
	Phase   string    `json:"phase" doc:"The lifecycle phase that wrote it; empty for the server's lines about the job."`
	Stream  string    `json:"stream" enum:"stdout,stderr,twinstac" doc:"stdout or stderr of the phase, or twinstac for the server's own lines."`
	Time    time.Time `json:"time"`
	Text    string    `json:"text"`
}

// LogPage is a page of a job's log.
type LogPage struct {
	Lines []LogLine `json:"lines"`
	// Next is the seq to read on from.
	Next int64 `json:"next" doc:"Pass as after to read the lines that follow."`
	// Done says the job is over and the log complete.
	Done bool `json:"done" doc:"The job is over: no line will follow."`
}

type jobLogsInput struct {
	JobPath
	After       int64  `query:"after" minimum:"0" doc:"Return the lines after this seq."`
	Limit       int    `query:"limit" minimum:"1" maximum:"10000" default:"1000"`
	Accept      string `header:"Accept" doc:"text/event-stream follows the log live until the job ends."`
	LastEventID string `header:"Last-Event-ID" doc:"Resume a followed log after this seq."`
}

type jobLogsOutput struct {
	Body func(huma.Context)
}

// logPoll is how often a followed log looks for new lines.
const logPoll = 250 * time.Millisecond

func (s *Server) registerJobLogs() {
	op := s.operation("getJobLogs", http.MethodGet, "/jobs/{jobId}/logs", "Processes", "Read a job's log",
		"The lines the job's phases wrote, phase by phase, with the server's own lines about the job (which attempt ran where, how each phase ended); bounded per job, with a line where it was cut. With Accept: text/event-stream it follows the log live (one event per line, id = seq; an end event when the job is over) and resumes after Last-Event-ID.",
		http.StatusOK, 401, 404)
	op.Security = requiredAuth
	schema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(LogPage{}), true, "")
	op.Responses = map[string]*huma.Response{
		"200": {Description: "A page of the log, or the log followed live.", Content: map[string]*huma.MediaType{
			mediaJSON:           {Schema: schema},
			"text/event-stream": {Schema: &huma.Schema{Type: "string", Description: "Events: log (data: a LogLine as JSON, id: its seq) and end (data: the job's status)."}},
		}},
	}
	huma.Register(s.api, op, func(ctx context.Context, in *jobLogsInput) (*jobLogsOutput, error) {
		j, err := s.visibleJob(ctx, in.JobID)
		if err != nil {
			return nil, err
		}
		store := s.deps.Jobs.Store
		if strings.Contains(in.Accept, "text/event-stream") {
			after := in.After
			if n, err := strconv.ParseInt(in.LastEventID, 10, 64); err == nil && n > after {
				after = n
			}
			return &jobLogsOutput{Body: func(hctx huma.Context) { s.followLog(hctx, store, j.ID, after) }}, nil
		}
		lines, err := store.ReadLog(ctx, j.ID, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		page := LogPage{Lines: make([]LogLine, len(lines)), Next: in.After, Done: j.Status.Final() && len(lines) < in.Limit}
		for i, e := range lines {
			page.Lines[i] = logLine(e)
			page.Next = e.Seq
		}
		b, err := json.Marshal(page)
		if err != nil {
			return nil, err
		}
		return &jobLogsOutput{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", mediaJSON)
			_, _ = hctx.BodyWriter().Write(b)
		}}, nil
	})
}

func logLine(e jobs.LogEntry) LogLine {
	return LogLine{Seq: e.Seq, Attempt: e.Attempt, Phase: e.Phase, Stream: e.Stream, Time: e.Time, Text: e.Text}
}

// startStream starts a text/event-stream answer (not buffered by
// proxies) and returns what flushes it to the client.
func startStream(w http.ResponseWriter) (flush func()) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flush = func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	return flush
}

// followLog streams a job's log as server-sent events until the job is
// over and every line is sent, or the client goes.
func (s *Server) followLog(hctx huma.Context, store jobs.Store, id string, after int64) {
	r, w := humago.Unwrap(hctx)
	ctx := r.Context()
	flush := startStream(w)
	keepAlive := time.Now()
	for {
		// Whether the job was over before this read: then no line comes
		// after it.
		j, err := store.GetJob(ctx, id)
		if err != nil {
			return
		}
		lines, err := store.ReadLog(ctx, id, after, 1000)
		if err != nil {
			return
		}
		for _, e := range lines {
			b, _ := json.Marshal(logLine(e))
			if _, err := fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", e.Seq, b); err != nil {
				return
			}
			after = e.Seq
		}
		if len(lines) > 0 {
			flush()
			keepAlive = time.Now()
			continue
		}
		if j.Status.Final() {
			fmt.Fprintf(w, "event: end\ndata: {\"status\":%q}\n\n", j.Status)
			flush()
			return
		}
		if time.Since(keepAlive) > 15*time.Second {
			fmt.Fprint(w, ": keep-alive\n\n")
			flush()
			keepAlive = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(logPoll):
		}
	}
}
