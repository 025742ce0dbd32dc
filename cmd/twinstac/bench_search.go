package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// benchSearch holds the settings of `twinstac bench search`.
type benchSearch struct {
	url      string
	queries  string
	clients  []int
	requests int
	warmup   int
	runs     int
	token    string
	only     []string
	// as are the callers to compare, NAME=TOKEN, measured in turn within
	// each run of each query (none: one caller with token).
	as []string
}

// benchCaller is one caller of an interleaved comparison.
type benchCaller struct{ name, token string }

// callers returns the callers to measure.
func (b *benchSearch) callers() ([]benchCaller, error) {
	if len(b.as) == 0 {
		return []benchCaller{{"", b.token}}, nil
	}
	var out []benchCaller
	for _, a := range b.as {
		name, token, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, usageError{fmt.Errorf("--as %q: use NAME=TOKEN (an empty token: anonymous)", a)}
		}
		out = append(out, benchCaller{name, token})
	}
	return out, nil
}

func newBenchSearch(stdout io.Writer) *cobra.Command {
	b := benchSearch{clients: []int{1, 4}, requests: 200, warmup: 20, runs: 3}
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Measure POST /search latency on the benchmark queries",
		Long: `Send each query of the workload's queries.json to POST /search, one
client after another (closed loop: each client sends its next request when
the answer to the last has arrived), with 1 and with 4 concurrent clients,
and report p50 and p95 per query: the median of the runs, with the range.
The paging cases follow the next links to the page named in queries.json
(untimed) and then time requests for that page. Each result line says
whether the answers carried numberMatched (the server counts within its
--search-count-budget; start it with 0 to measure without counting).
The server must be on this machine (loopback) and hold the workload.

--as NAME=TOKEN, given for several callers, compares them: within each
run of each query the callers are measured in turn (so that the
machine's drift touches them alike), and each line gives the caller's
p50 as a multiple of the first caller's.`,
		Example: `  twinstac bench ingest --file items-1m.ndjson --collections collections.json --runs 1 --keep --published \
      --database-url 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
  twinstac serve --database-url <the kept database> --search-count-budget 0 &
  twinstac bench search --url http://127.0.0.1:8080 --queries ../shared/bench/queries.json
  twinstac bench search --url http://127.0.0.1:8080 --clients 1 --as admin=$ADMIN_TOKEN --as uma=$UMA_TOKEN --as ursula=$URSULA_TOKEN`,
		RunE: func(cmd *cobra.Command, _ []string) error { return b.run(cmd.Context(), stdout) },
	}
	f := cmd.Flags()
	f.StringVar(&b.url, "url", "", "base URL of the server (loopback only; required)")
	f.StringVar(&b.queries, "queries", "../shared/bench/queries.json", "the workload's queries.json")
	f.IntSliceVar(&b.clients, "clients", b.clients, "concurrent clients, one measurement per value")
	f.IntVar(&b.requests, "requests", b.requests, "timed requests per query, client count and run")
	f.IntVar(&b.warmup, "warmup", b.warmup, "untimed requests per query before the runs")
	f.IntVar(&b.runs, "runs", b.runs, "number of runs")
	f.StringSliceVar(&b.only, "query", nil, "measure only these queries (q1, q4, q1-page20, ...)")
	f.StringVar(&b.token, "token", os.Getenv("TWINSTAC_TOKEN"), "bearer token to send (env TWINSTAC_TOKEN)")
	f.StringArrayVar(&b.as, "as", nil, "compare callers: NAME=TOKEN, once per caller, the first the reference")
	return cmd
}

// benchQuery is one request to time.
type benchQuery struct {
	name, title string
	body        json.RawMessage
}

func (b *benchSearch) load() ([]benchQuery, int, []string, error) {
	raw, err := os.ReadFile(b.queries)
	if err != nil {
		return nil, 0, nil, err
	}
	var file struct {
		Queries []struct {
			Name  string          `json:"name"`
			Title string          `json:"title"`
			Body  json.RawMessage `json:"body"`
		} `json:"queries"`
		Paging struct {
			Queries []string `json:"queries"`
			Page    int      `json:"page"`
		} `json:"paging"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", b.queries, err)
	}
	var qs []benchQuery
	for _, q := range file.Queries {
		qs = append(qs, benchQuery{name: q.Name, title: q.Title, body: q.Body})
	}
	return qs, file.Paging.Page, file.Paging.Queries, nil
}

func (b *benchSearch) run(ctx context.Context, stdout io.Writer) error {
	u, err := url.Parse(b.url)
	if err != nil || u.Host == "" {
		return errors.New("--url must be the server's base URL")
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return errors.New("--url must point at this machine (127.0.0.1, ::1 or localhost)")
	}
	queries, page, paged, err := b.load()
	if err != nil {
		return err
	}
	callers, err := b.callers()
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}
	// The paging cases: the body of page N, reached by following next
	// (as each caller, whose pages differ).
	type named struct {
		name, title string
		bodies      []json.RawMessage // by caller
	}
	var all []named
	for _, q := range queries {
		n := named{name: q.name, title: q.title}
		for range callers {
			n.bodies = append(n.bodies, q.body)
		}
		all = append(all, n)
	}
	for _, name := range paged {
		i := slices.IndexFunc(queries, func(q benchQuery) bool { return q.name == name })
		if i < 0 {
			return fmt.Errorf("paging names %s, which queries.json does not hold", name)
		}
		n := named{name: fmt.Sprintf("%s-page%d", name, page), title: fmt.Sprintf("page %d of %s", page, name)}
		for _, c := range callers {
			body, err := b.pageBody(ctx, client, c.token, queries[i].body, page)
			if err != nil {
				return fmt.Errorf("%s page %d as %s: %w", name, page, c.name, err)
			}
			n.bodies = append(n.bodies, body)
		}
		all = append(all, n)
	}
	if len(b.only) > 0 {
		all = slices.DeleteFunc(all, func(q named) bool { return !slices.Contains(b.only, q.name) })
	}
	compare := len(b.as) > 0
	if compare {
		fmt.Fprintf(stdout, "%-12s %-10s %7s %8s %9s %-27s %-27s %7s %s\n", "query", "caller", "clients", "returned", "matched", "p50 ms median (min-max)", "p95 ms median (min-max)", "p50/ref", "req/s")
	} else {
		fmt.Fprintf(stdout, "%-12s %7s %8s %9s %-27s %-27s %s\n", "query", "clients", "returned", "matched", "p50 ms median (min-max)", "p95 ms median (min-max)", "req/s")
	}
	for _, q := range all {
		for i, c := range callers {
			for range b.warmup {
				if _, err := b.post(ctx, client, c.token, q.bodies[i]); err != nil {
					return fmt.Errorf("%s: %w", q.name, err)
				}
			}
		}
		for _, n := range b.clients {
			p50s, p95s, rates := make([][]float64, len(callers)), make([][]float64, len(callers)), make([][]float64, len(callers))
			last := make([]searchAnswer, len(callers))
			for range b.runs {
				for i, c := range callers {
					lat, ans, rate, err := b.measure(ctx, client, c.token, q.bodies[i], n)
					if err != nil {
						return fmt.Errorf("%s: %w", q.name, err)
					}
					p50s[i], p95s[i], rates[i] = append(p50s[i], pct(lat, 50)), append(p95s[i], pct(lat, 95)), append(rates[i], rate)
					last[i] = ans
				}
			}
			ref := 0.0
			for i, c := range callers {
				slices.Sort(p50s[i])
				slices.Sort(p95s[i])
				slices.Sort(rates[i])
				matched := "-"
				if last[i].matched != nil {
					matched = strconv.FormatInt(*last[i].matched, 10)
				}
				p50 := fmt.Sprintf("%.2f (%.2f-%.2f)", median(p50s[i]), p50s[i][0], p50s[i][len(p50s[i])-1])
				p95 := fmt.Sprintf("%.2f (%.2f-%.2f)", median(p95s[i]), p95s[i][0], p95s[i][len(p95s[i])-1])
				if !compare {
					fmt.Fprintf(stdout, "%-12s %7d %8d %9s %-27s %-27s %.0f\n", q.name, n, last[i].returned, matched, p50, p95, median(rates[i]))
					continue
				}
				if i == 0 {
					ref = median(p50s[i])
				}
				fmt.Fprintf(stdout, "%-12s %-10s %7d %8d %9s %-27s %-27s %7.2f %.0f\n", q.name, c.name, n, last[i].returned, matched, p50, p95,
					median(p50s[i])/ref, median(rates[i]))
			}
		}
	}
	return nil
}

type searchAnswer struct {
	returned int
	matched  *int64
	next     json.RawMessage // the body of the next link, nil without one
}

// post sends one search and reads what the benchmark needs of the answer.
func (b *benchSearch) post(ctx context.Context, client *http.Client, token string, body []byte) (searchAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(b.url, "/")+"/search", bytes.NewReader(body))
	if err != nil {
		return searchAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return searchAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return searchAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return searchAnswer{}, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	var fc struct {
		NumberReturned int    `json:"numberReturned"`
		NumberMatched  *int64 `json:"numberMatched"`
		Links          []struct {
			Rel  string          `json:"rel"`
			Body json.RawMessage `json:"body"`
		} `json:"links"`
	}
	if err := json.Unmarshal(raw, &fc); err != nil {
		return searchAnswer{}, err
	}
	ans := searchAnswer{returned: fc.NumberReturned, matched: fc.NumberMatched}
	for _, l := range fc.Links {
		if l.Rel == "next" {
			ans.next = l.Body
		}
	}
	return ans, nil
}

// pageBody follows next links from body to page n and returns its body.
func (b *benchSearch) pageBody(ctx context.Context, client *http.Client, token string, body json.RawMessage, n int) (json.RawMessage, error) {
	for i := 1; i < n; i++ {
		ans, err := b.post(ctx, client, token, body)
		if err != nil {
			return nil, err
		}
		if ans.next == nil {
			return nil, fmt.Errorf("page %d has no next link", i)
		}
		var merged, extra map[string]json.RawMessage
		if err := json.Unmarshal(body, &merged); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(ans.next, &extra); err != nil {
			return nil, err
		}
		for k, v := range extra {
			merged[k] = v
		}
		if body, err = json.Marshal(merged); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// measure sends b.requests searches from each of c clients and returns
// the latencies (ms, sorted), the last answer and the request rate.
func (b *benchSearch) measure(ctx context.Context, client *http.Client, token string, body []byte, c int) ([]float64, searchAnswer, float64, error) {
	var (
		mu   sync.Mutex
		lat  []float64
		last searchAnswer
		wg   sync.WaitGroup
		errs = make(chan error, c)
	)
	start := time.Now()
	for range c {
		wg.Go(func() {
			for range b.requests {
				t := time.Now()
				ans, err := b.post(ctx, client, token, body)
				d := time.Since(t)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				lat = append(lat, float64(d.Microseconds())/1000)
				last = ans
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, last, 0, err
	}
	rate := float64(len(lat)) / time.Since(start).Seconds()
	slices.Sort(lat)
	return lat, last, rate, nil
}

// pct returns the q-th percentile of sorted values.
func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q/100*float64(len(sorted)-1))]
}
