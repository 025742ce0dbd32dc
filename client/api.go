package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// API is a connection to a twinstac server: the generated client with
// typed responses (every method of ClientWithResponses), authenticated
// and retrying as New set it up, and the helpers of this package.
type API struct {
	*ClientWithResponses
	// Server is the API's base URL, without a trailing slash.
	Server string
	// HTTP is the HTTP client the calls go through (its transport
	// authenticates and retries).
	HTTP *http.Client
}

// Option sets up New.
type Option func(*settings)

type settings struct {
	token     string
	client    *http.Client
	retries   int
	userAgent string
}

// Token sends the bearer token with every request to the server (and
// to no other host).
func Token(token string) Option { return func(s *settings) { s.token = token } }

// HTTPClient is the client whose transport and timeout the calls use
// (default: http.DefaultTransport, no timeout; a call ends with its
// context).
func HTTPClient(c *http.Client) Option { return func(s *settings) { s.client = c } }

// Retries is how many times a call answered 429 or 503 (or, when its
// method is idempotent, lost on the way) is tried again (default 4; 0:
// never).
func Retries(n int) Option { return func(s *settings) { s.retries = n } }

// UserAgent names the program in the User-Agent header.
func UserAgent(ua string) Option { return func(s *settings) { s.userAgent = ua } }

// New connects to the twinstac API at server (such as
// https://dt.example.org). Nothing is sent until the first call.
func New(server string, opts ...Option) (*API, error) {
	st := settings{retries: 4, userAgent: "twinstac-go-client"}
	for _, o := range opts {
		o(&st)
	}
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: the server URL %q is not an http(s) URL", server)
	}
	hc := &http.Client{}
	if st.client != nil {
		c := *st.client
		hc = &c
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = &authTransport{
		next:  &retryTransport{next: next, max: st.retries},
		host:  u.Host,
		https: u.Scheme == "https",
		token: st.token,
		ua:    st.userAgent,
	}
	gen, err := NewClientWithResponses(u.String(), WithHTTPClient(hc), WithRequestEditorFn(knownLength))
	if err != nil {
		return nil, err
	}
	return &API{ClientWithResponses: gen, Server: u.String(), HTTP: hc}, nil
}

// knownLength turns a Content-Length header that a generated call sets
// (an asset upload's length) into the request's length: net/http ignores
// the header, and without the length it sends a stream body chunked,
// which some proxies and stores refuse and which leaves the server to
// learn the size only at the end.
func knownLength(_ context.Context, req *http.Request) error {
	v := req.Header.Get("Content-Length")
	if v == "" || req.Body == nil || req.Body == http.NoBody || req.ContentLength > 0 {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("client: Content-Length %q is not a length", v)
	}
	req.Header.Del("Content-Length")
	if n == 0 {
		// A zero length with a body means "unknown" to net/http.
		_ = req.Body.Close()
		req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	req.ContentLength = n
	return nil
}

// authTransport adds the bearer token to requests to the server's host
// only: a link may lead elsewhere, and the token is not for there.
type authTransport struct {
	next      http.RoundTripper
	host      string
	https     bool // the server is https: the token never goes over http
	token, ua string
}

// ours says whether the token may go with req: to the server's host, and
// not over plain HTTP when the server is reached over HTTPS.
func (t *authTransport) ours(req *http.Request) bool {
	return t.token != "" && req.URL.Host == t.host && (!t.https || req.URL.Scheme == "https")
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.ours(req) && t.ua == "" {
		return t.next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	if t.ours(req) && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	if t.ua != "" && r.Header.Get("User-Agent") == "" {
		r.Header.Set("User-Agent", t.ua)
	}
	return t.next.RoundTrip(r)
}

// retryTransport tries a request again when the server says it could
// not take it now (429, 503), waiting as Retry-After says or, without
// it, for a growing, jittered backoff; a request of an idempotent method
// is also tried again when the connection failed. A request whose body
// cannot be read again (a streamed upload) is not retried: its answer is
// returned as it is. A wait longer than maxRetryWait is not made.
//
// A library such as hashicorp/go-retryablehttp would read every request
// body into memory to replay it, which large asset uploads cannot
// afford; this transport replays only what net/http can (GetBody).
type retryTransport struct {
	next http.RoundTripper
	max  int
}

const maxRetryWait = 2 * time.Minute

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := t.next.RoundTrip(r)
		if attempt >= t.max || !replayable || req.Context().Err() != nil {
			return resp, err
		}
		var wait time.Duration
		switch {
		case err != nil:
			if !idempotent(req.Method) {
				return resp, err
			}
			wait = backoff(attempt)
		case resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode == http.StatusServiceUnavailable && idempotent(req.Method)):
			// A 503 may come after a write was made (its acknowledgement
			// lost): only idempotent requests are sent again on it.
			wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if wait < 0 {
				wait = backoff(attempt)
			}
			if wait > maxRetryWait {
				return resp, nil
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		default:
			return resp, nil
		}
		tm := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			tm.Stop()
			return nil, req.Context().Err()
		case <-tm.C:
		}
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// backoff is the wait before retry attempt+1: 250 ms doubling, at most
// 8 s, with ±50 % jitter.
func backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond << min(attempt, 5)
	j := time.Duration(time.Now().UnixNano() % int64(d))
	return d/2 + j
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); -1
// when there is none or it cannot be read.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// Error is a call the server refused or failed: its status and the
// problem details it answered with.
type Error struct {
	StatusCode int
	Problem    Problem
}

// Error is the problem in one line: status, title, detail, where, and
// the request id to quote.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Problem.Detail != nil && *e.Problem.Detail != "" {
		b.WriteString(": " + *e.Problem.Detail)
	} else if e.Problem.Title != "" && e.Problem.Title != http.StatusText(e.StatusCode) {
		b.WriteString(": " + e.Problem.Title)
	}
	if e.Problem.Pointer != nil && *e.Problem.Pointer != "" {
		b.WriteString(" (at " + *e.Problem.Pointer + ")")
	}
	if e.Problem.Errors != nil {
		for _, d := range *e.Problem.Errors {
			if d.Message == nil {
				continue
			}
			b.WriteString("; " + *d.Message)
			if d.Location != nil && *d.Location != "" {
				b.WriteString(" (at " + *d.Location + ")")
			}
		}
	}
	if e.Problem.RequestId != nil && *e.Problem.RequestId != "" {
		b.WriteString(" [request " + *e.Problem.RequestId + "]")
	}
	return b.String()
}

// StatusOf returns the HTTP status of an *Error in err's chain, 0 when
// there is none (the call did not reach the server, or did not fail).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// ErrorOf makes the Error of a failed answer from its body: problem
// details when it holds them, otherwise the start of the body as detail.
func ErrorOf(status int, contentType string, body []byte) *Error {
	e := &Error{StatusCode: status, Problem: Problem{Status: int64(status)}}
	mt, _, _ := mime.ParseMediaType(contentType)
	if (mt == "application/problem+json" || mt == "application/json") && json.Unmarshal(body, &e.Problem) == nil {
		e.Problem.Status = int64(status)
		return e
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	if text != "" {
		e.Problem.Detail = &text
	}
	return e
}

// Check turns the answer of a generated …WithResponse method into an
// *Error when its status is 400 or above, so that a call reads
//
//	res, err := client.Check(api.GetCollectionWithResponse(ctx, "c"))
func Check[R any](r R, err error) (R, error) {
	if err != nil {
		return r, err
	}
	v := reflect.ValueOf(r)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return r, nil
	}
	hr, _ := v.Elem().FieldByName("HTTPResponse").Interface().(*http.Response)
	body, _ := v.Elem().FieldByName("Body").Interface().([]byte)
	if hr == nil || hr.StatusCode < 400 {
		return r, nil
	}
	return r, ErrorOf(hr.StatusCode, hr.Header.Get("Content-Type"), body)
}

// do sends a request and returns the answer's body, or the *Error of a
// failed one.
func (a *API) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 400 {
		return resp, body, ErrorOf(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return resp, body, nil
}

// newRequest makes a request to href, which is relative to the server
// or absolute.
func (a *API) newRequest(ctx context.Context, method, href string, body io.Reader) (*http.Request, error) {
	u, err := url.Parse(href)
	if err != nil {
		return nil, err
	}
	if !u.IsAbs() {
		base, err := url.Parse(a.Server + "/")
		if err != nil {
			return nil, err
		}
		u = base.ResolveReference(u)
	}
	return http.NewRequestWithContext(ctx, method, u.String(), body)
}
