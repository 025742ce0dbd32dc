package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Callbacks: an execution may name subscriber URIs (OGC API – Processes,
// callback class). When its job starts, succeeds or fails, a task POSTs
// the job's status, results or exception there, retried with backoff.
// Only addresses the callback policy allows are reached: by default no
// loopback, private, link-local or otherwise internal address, checked on
// every connection (after DNS, and on redirects), so that a callback
// cannot be used to reach into the server's network.

// Subscriber are the callback URIs of an execution.
type Subscriber struct {
	SuccessURI    string `json:"successUri,omitempty"`
	InProgressURI string `json:"inProgressUri,omitempty"`
	FailedURI     string `json:"failedUri,omitempty"`
}

// CallbackPolicy says which addresses callbacks may reach.
type CallbackPolicy struct {
	// Allow are networks callbacks may reach even though they are
	// internal (loopback, private, ...), as an administrator allows.
	Allow []netip.Prefix
}

// ParseCallbackAllow reads the networks of --callback-allow: CIDRs or
// single addresses.
func ParseCallbackAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (CIDR) nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// internal are the networks no callback reaches unless allowed, beyond
// what netip's predicates name: shared address space (RFC 6598), this
// network, benchmarking, and IPv4/IPv6 translation prefixes.
var internal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"),
}

// Permits reports whether a callback may connect to a.
func (p CallbackPolicy) Permits(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.Allow {
		if n.Contains(a) {
			return true
		}
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, n := range internal {
		if n.Contains(a) {
			return false
		}
	}
	return true
}

// CheckURI checks a subscriber URI when the execution is submitted: an
// absolute http or https URL without credentials, whose host, when it is
// an address or localhost, the policy permits. Hostnames are checked
// again, resolved, on every connection. Codes: EINVALID at ptr.
func (p CallbackPolicy) CheckURI(ptr, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return catalog.Invalid(ptr, "%q is not a URL: %v", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return catalog.Invalid(ptr, "a callback is an http or https URL, not %q", raw)
	case u.Host == "" || u.Hostname() == "":
		return catalog.Invalid(ptr, "callback URL %q names no host", raw)
	case u.User != nil:
		return catalog.Invalid(ptr, "callback URL %q carries credentials; put a token in its path or query instead", raw)
	case len(raw) > 2048:
		return catalog.Invalid(ptr, "a callback URL is at most 2048 bytes")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.Permits(a) {
			return catalog.Invalid(ptr, "callbacks to %s are not allowed: it is an internal address (an administrator may allow it)", host)
		}
	} else if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if !p.Permits(netip.MustParseAddr("127.0.0.1")) {
			return catalog.Invalid(ptr, "callbacks to %s are not allowed: it is this machine (an administrator may allow it)", host)
		}
	}
	return nil
}

// errForbiddenAddress is the dial error of a connection the policy
// refuses.
var errForbiddenAddress = errors.New("callbacks may not reach this address")

// Client returns an HTTP client whose every connection the policy
// checks, after name resolution: a hostname that resolves to an internal
// address, or a redirect to one, is refused.
func (p CallbackPolicy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errForbiddenAddress, address)
		}
		if !p.Permits(ap.Addr()) {
			return fmt.Errorf("%w: %s", errForbiddenAddress, ap.Addr())
		}
		return nil
	}}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		Proxy:                 nil, // a proxy would connect for us, unchecked
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		return nil
	}}
}

// TaskCallback is the type of the asynq task that POSTs a callback.
const TaskCallback = "twinstac:job:callback"

type callbackPayload struct {
	Job  string          `json:"job"`
	URL  string          `json:"url"`
	Kind string          `json:"kind"`
	Body json.RawMessage `json:"body"`
}

// callbackMaxRetry is how often a callback is tried again (asynq's
// backoff spreads them over hours).
const callbackMaxRetry = 12

// Notify implements jobs.Queue: it queues the callbacks of a job's
// change to status st: running → inProgressUri; successful → successUri
// (the results); failed or dismissed → failedUri (the exception or
// status).
func (q *Queue) Notify(ctx context.Context, j *jobs.Job, st jobs.Status) error {
	var req Request
	if len(j.Request) == 0 || json.Unmarshal(j.Request, &req) != nil || req.Subscriber == nil {
		return nil
	}
	s := req.Subscriber
	base := strings.TrimSuffix(req.BaseURL, "/")
	self := base + "/jobs/" + url.PathEscape(j.ID)
	status := map[string]any{"jobID": j.ID, "processID": j.Process, "type": "process", "status": string(st),
		"links": []map[string]string{{"rel": "self", "href": self, "type": "application/json"}}}
	var (
		target string
		body   any
		kind   string
	)
	switch st {
	case jobs.StatusRunning:
		target, body, kind = s.InProgressURI, status, "inProgress"
	case jobs.StatusSuccessful:
		results := map[string]any{}
		for _, ref := range j.Results {
			if c, i, ok := jobs.ParseRef(ref); ok {
				results["result"] = map[string]string{"href": base + catalog.ItemPath(c, i), "type": "application/geo+json", "rel": "item"}
			}
		}
		target, body, kind = s.SuccessURI, results, "success"
	case jobs.StatusFailed, jobs.StatusDismissed:
		if len(j.Exception) > 0 {
			var exc map[string]any
			_ = json.Unmarshal(j.Exception, &exc)
			exc["jobID"] = j.ID
			body = exc
		} else {
			body = status
		}
		target, kind = s.FailedURI, "failed"
	}
	if target == "" {
		return nil
	}
	raw, _ := json.Marshal(body)
	payload, _ := json.Marshal(callbackPayload{Job: j.ID, URL: target, Kind: kind, Body: raw})
	t := asynq.NewTask(TaskCallback, payload, asynq.TaskID("callback:"+j.ID+":"+kind), asynq.Queue(q.queue+criticalSuffix),
		asynq.MaxRetry(callbackMaxRetry), asynq.Timeout(time.Minute), asynq.Retention(24*time.Hour))
	_, err := q.client.EnqueueContext(ctx, t)
	if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return catalog.Errorf(catalog.EUNAVAILABLE, "the job queue is unavailable: %v", err)
}

// deliver POSTs a callback. A 2xx is done; a refused address or a 4xx
// other than 408 and 429 is not tried again; anything else is.
func deliver(ctx context.Context, client *http.Client, p callbackPayload) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "twinstac-callback")
	req.Header.Set("X-Twinstac-Job", p.Job)
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errForbiddenAddress) {
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s answered %d", asynq.SkipRetry, p.URL, resp.StatusCode)
	default:
		return fmt.Errorf("%s answered %d", p.URL, resp.StatusCode)
	}
}
