package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// maxStreamRetries is how many times in a row a dropped stream is
// opened again before the follower gives up.
const maxStreamRetries = 5

// FollowLog calls fn with each line of a job's log after the line seq
// after (0: from the start), live, until the job is over, and returns
// the job's final status. A dropped connection is opened again where it
// stopped (Last-Event-ID). An error of fn stops it and is returned.
func (a *API) FollowLog(ctx context.Context, jobID string, after int64, fn func(LogLine) error) (status string, err error) {
	accept := "text/event-stream"
	err = a.follow(ctx, "the log stream of job "+jobID, func() (*http.Request, error) {
		params := &GetJobLogsParams{Accept: &accept}
		if after > 0 {
			params.After = &after
		}
		return NewGetJobLogsRequest(a.Server, jobID, params)
	}, func(ev sse.Event) (bool, error) {
		switch ev.Type {
		case "log":
			var l LogLine
			if err := json.Unmarshal([]byte(ev.Data), &l); err != nil {
				return true, fmt.Errorf("client: a log event: %w", err)
			}
			after = l.Seq
			return false, fn(l)
		case "end":
			var end struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &end); err != nil {
				return true, fmt.Errorf("client: the end event: %w", err)
			}
			status = end.Status
			return true, nil
		}
		return false, nil
	})
	return status, err
}

// FollowEvents calls fn with each event params select that the caller
// may see, live, until ctx ends (it then returns ctx.Err()) or fn
// returns an error. A dropped connection is opened again after the last
// event seen (Last-Event-ID).
func (a *API) FollowEvents(ctx context.Context, params *GetEventsParams, fn func(Event) error) error {
	accept := "text/event-stream"
	p := GetEventsParams{}
	if params != nil {
		p = *params
	}
	p.Accept = &accept
	return a.follow(ctx, "the event stream", func() (*http.Request, error) {
		return NewGetEventsRequest(a.Server, &p)
	}, func(ev sse.Event) (bool, error) {
		var e Event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			return true, fmt.Errorf("client: an event: %w", err)
		}
		if seq, err := strconv.ParseInt(ev.LastEventID, 10, 64); err == nil {
			p.After, p.LastEventID = &seq, &ev.LastEventID
		}
		return false, fn(e)
	})
}

// follow opens the stream open makes and passes its events to on until
// on says stop or fails, opening it again (open is called anew, so it
// resumes where on left it) when it drops: up to maxStreamRetries times
// in a row without an event or a healthy connection in between, waiting
// a growing backoff. It returns ctx.Err() when ctx ends.
func (a *API) follow(ctx context.Context, what string, open func() (*http.Request, error), on func(sse.Event) (stop bool, err error)) error {
	failures := 0
	for {
		req, err := open()
		if err != nil {
			return err
		}
		got := false
		err = a.stream(req.WithContext(ctx), func(ev sse.Event) (bool, error) {
			got = true
			return on(ev)
		})
		if !retryable(ctx, err) {
			return err
		}
		if got || opened(err) {
			failures = 0
		}
		if failures++; failures > maxStreamRetries {
			return fmt.Errorf("client: %s kept dropping: %w", what, errOrEOF(err))
		}
		if err := sleep(ctx, backoff(failures-1)); err != nil {
			return err
		}
	}
}

// opened says whether a stream ended after it was open (the server or
// a proxy closed a healthy connection), rather than failing to open.
func opened(err error) bool { return errors.Is(err, errStreamEnded) }

// errStreamEnded is a stream the server closed without saying it ended.
var errStreamEnded = errors.New("the stream ended early")

// streamError is an error of the stream itself (the connection, the
// framing), after which it may be opened again.
type streamError struct{ err error }

func (e streamError) Error() string { return e.err.Error() }
func (e streamError) Unwrap() error { return e.err }

// stream opens req as server-sent events and calls on with each event
// until on says stop or fails; the stream ending otherwise is a
// streamError.
func (a *API) stream(req *http.Request, on func(sse.Event) (stop bool, err error)) error {
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return streamError{err}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 400 {
		body := make([]byte, 64<<10)
		n, _ := resp.Body.Read(body)
		return ErrorOf(resp.StatusCode, resp.Header.Get("Content-Type"), body[:n])
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fmt.Errorf("client: %s answered %s, not text/event-stream", req.URL.Path, resp.Header.Get("Content-Type"))
	}
	for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			return streamError{err}
		}
		stop, err := on(ev)
		if stop || err != nil {
			return err
		}
	}
	return streamError{errStreamEnded}
}

// retryable says whether a follower opens its stream again after err.
func retryable(ctx context.Context, err error) bool {
	var se streamError
	return err != nil && ctx.Err() == nil && errors.As(err, &se)
}

func errOrEOF(err error) error {
	if err == nil {
		return errStreamEnded
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
