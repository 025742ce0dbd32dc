package workers_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/testdb"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

func TestCallbackPolicy(t *testing.T) {
	var none workers.CallbackPolicy
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2001:4860:4860::8888": true, "1.1.1.1": true,
		"127.0.0.1": false, "127.8.9.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "0.0.0.0": false, "::": false, "100.64.0.1": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "224.0.0.1": false, "ff02::1": false, "198.18.0.1": false,
		"64:ff9b::7f00:1": false,
	} {
		if got := none.Permits(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Permits(%s) = %v by default, want %v", addr, got, want)
		}
	}
	allow, err := workers.ParseCallbackAllow([]string{"127.0.0.1", "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	some := workers.CallbackPolicy{Allow: allow}
	for addr, want := range map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "10.1.200.3": true, "10.2.0.1": false, "::ffff:127.0.0.1": true} {
		if got := some.Permits(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Permits(%s) = %v when allowed %v, want %v", addr, got, allow, want)
		}
	}
	if _, err := workers.ParseCallbackAllow([]string{"intranet"}); err == nil {
		t.Fatal("a name is not a network")
	}

	for uri, ok := range map[string]bool{
		"https://hooks.example.org/twinstac?token=x": true, "http://8.8.8.8:8080/cb": true, "": true,
		"ftp://example.org/": false, "/relative": false, "https://user:pw@example.org/": false, "http://127.0.0.1/": false,
		"http://[::1]:80/": false, "http://localhost:9/": false, "http://api.localhost/": false, "http://169.254.169.254/latest": false,
		"http://10.0.0.1/": false, "http://:80/": false,
	} {
		err := none.CheckURI("/subscriber/successUri", uri)
		if (err == nil) != ok {
			t.Errorf("CheckURI(%q) = %v, want ok %v", uri, err, ok)
		}
		if err != nil {
			var ce *catalog.Error
			if e, isCE := err.(*catalog.Error); isCE {
				ce = e
			}
			if ce == nil || ce.Code != catalog.EINVALID || ce.Pointer != "/subscriber/successUri" {
				t.Errorf("CheckURI(%q) = %v, want EINVALID at the pointer", uri, err)
			}
		}
	}
	if err := some.CheckURI("/x", "http://127.0.0.1:9/cb"); err != nil {
		t.Errorf("an allowed address refused: %v", err)
	}
}

// TestCallbackClientChecksEveryConnection: names and redirects are
// checked where they lead, after resolution.
func TestCallbackClientChecksEveryConnection(t *testing.T) {
	inner := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on a second loopback address (Linux answers on all of 127.0.0.0/8): %v", err)
	}
	inner.Listener = ln
	inner.Start()
	defer inner.Close()
	outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL, http.StatusTemporaryRedirect)
	}))
	defer outer.Close()
	allow, _ := workers.ParseCallbackAllow([]string{"127.0.0.1"})
	client := workers.CallbackPolicy{Allow: allow}.Client(5 * time.Second)
	// A name that resolves to a refused address is refused.
	port := outer.URL[strings.LastIndex(outer.URL, ":")+1:]
	if _, err := (workers.CallbackPolicy{}).Client(5*time.Second).Post("http://localhost:"+port+"/", "application/json", nil); err == nil || !strings.Contains(err.Error(), "may not reach") {
		t.Fatalf("a name of this machine: %v", err)
	}
	// An allowed address that redirects to a refused one.
	if _, err := client.Post(outer.URL, "application/json", strings.NewReader("{}")); err == nil || !strings.Contains(err.Error(), "may not reach") {
		t.Fatalf("a redirect to a refused address: %v", err)
	}
	resp, err := workers.CallbackPolicy{Allow: append(allow, netip.MustParsePrefix("127.0.0.2/32"))}.Client(5*time.Second).Post(outer.URL, "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("allowed both ways: %v", err)
	}
	_ = resp.Body.Close()
}

// TestCallbacks: a job's subscriber hears that it started and how it
// ended; a callback refused by the policy is never sent.
func TestCallbacks(t *testing.T) {
	t.Parallel()
	type call struct {
		path string
		body map[string]any
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		calls = append(calls, call{r.URL.Path, m})
		mu.Unlock()
		if r.URL.Path == "/flaky" && len(calls) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	seen := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		n := map[string]int{}
		for _, c := range calls {
			n[c.path]++
		}
		return n
	}
	for name, conn := range redisConns(t) {
		t.Run(name, func(t *testing.T) {
			s, q, queue := setupQueue(t, conn)
			s.runner.Queue = q
			allow, _ := workers.ParseCallbackAllow([]string{"127.0.0.1"})
			srv := workers.NewServer(conn, s.runner, workers.ServerConfig{Concurrency: 2, Queues: workers.QueuesOf(queue),
				Callbacks: workers.CallbackPolicy{Allow: allow}, RetryDelay: func(int) time.Duration { return 10 * time.Millisecond }})
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown()
			mu.Lock()
			calls = nil
			mu.Unlock()
			sub := func(prefix string) json.RawMessage {
				b, _ := json.Marshal(workers.Request{BaseURL: "https://dt.example.org", Subscriber: &workers.Subscriber{
					InProgressURI: hook.URL + "/" + prefix + "-running", SuccessURI: hook.URL + "/" + prefix + "-ok", FailedURI: hook.URL + "/" + prefix + "-failed"}})
				return b
			}
			ok := s.submitRequest(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 3}, sub("a"))
			bad := s.submitRequest(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": "x"}, sub("b"))
			for _, j := range []*jobs.Job{ok, bad} {
				if err := q.Enqueue(t.Context(), j); err != nil {
					t.Fatal(err)
				}
			}
			waitJob(t, s, ok.ID)
			waitJob(t, s, bad.ID)
			testdb.WaitFor(t, 30*time.Second, "the callbacks", func() bool {
				n := seen()
				return n["/a-running"] == 1 && n["/a-ok"] == 1 && n["/b-running"] == 1 && n["/b-failed"] == 1
			})
			mu.Lock()
			defer mu.Unlock()
			for _, c := range calls {
				switch c.path {
				case "/a-ok":
					res, _ := c.body["result"].(map[string]any)
					if href, _ := res["href"].(string); !strings.HasPrefix(href, "https://dt.example.org/collections/") {
						t.Errorf("the success callback: %v", c.body)
					}
				case "/b-failed":
					if c.body["jobID"] != bad.ID || !strings.Contains(c.body["detail"].(string), "exited with status") {
						t.Errorf("the failure callback: %v", c.body)
					}
				case "/a-running":
					if c.body["status"] != "running" || c.body["jobID"] != ok.ID {
						t.Errorf("the in-progress callback: %v", c.body)
					}
				}
			}
		})
	}
	// A refused address is never reached, and the job is not held up.
	mini := redisConns(t)["miniredis"]
	s, q, queue := setupQueue(t, mini)
	s.runner.Queue = q
	srv := workers.NewServer(mini, s.runner, workers.ServerConfig{Concurrency: 1, Queues: workers.QueuesOf(queue)})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	before := len(seen())
	b, _ := json.Marshal(workers.Request{Subscriber: &workers.Subscriber{SuccessURI: hook.URL + "/refused"}})
	j := s.submitRequest(t, "water-tank", map[string]any{"inflow": 0.5, "outflow": 0.2, "steps": 2}, b)
	if err := q.Enqueue(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if got := waitJob(t, s, j.ID); got.Status != jobs.StatusSuccessful {
		t.Fatalf("job with a refused callback: %s", got.Status)
	}
	// Its task ends at once, not retried, saying why.
	insp := asynq.NewInspector(mini)
	defer func() { _ = insp.Close() }()
	var info *asynq.TaskInfo
	testdb.WaitFor(t, 30*time.Second, "the refused callback's task to end", func() bool {
		var err error
		info, err = insp.GetTaskInfo(queue+"-critical", "callback:"+j.ID+":success")
		return err == nil && info.State == asynq.TaskStateArchived
	})
	if !strings.Contains(info.LastErr, "may not reach") || info.Retried != 0 {
		t.Fatalf("the refused callback's task: %+v", info)
	}
	if n := seen(); n["/refused"] != 0 || len(n) != before {
		t.Fatalf("a refused callback was sent: %v", n)
	}
}
