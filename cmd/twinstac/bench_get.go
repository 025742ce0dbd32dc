package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// benchGet holds the settings of `twinstac bench get`.
type benchGet struct {
	url      string
	file     string
	sample   int
	rate     int
	duration time.Duration
	runs     int
	warmup   time.Duration
	token    string
}

func newBenchGet(stdout io.Writer) *cobra.Command {
	b := benchGet{sample: 100000, rate: 1000, duration: 30 * time.Second, runs: 3, warmup: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Measure GET /collections/{c}/items/{i} latency at a fixed request rate",
		Long: `Send GET requests for items of the workload file at a fixed rate (an
open-loop load: each request is timed from when it was due, so a slow
server cannot hide its queueing) and report the latency percentiles of
each run and their median. The server must be on this machine (loopback).`,
		Example: "  twinstac bench get --url http://127.0.0.1:8080 --file items-1m.ndjson --rate 1000 --duration 30s",
		RunE:    func(cmd *cobra.Command, _ []string) error { return b.run(cmd.Context(), stdout) },
	}
	f := cmd.Flags()
	f.StringVar(&b.url, "url", "", "base URL of the server (loopback only; required)")
	f.StringVar(&b.file, "file", "", "NDJSON file of the loaded items (required)")
	f.IntVar(&b.sample, "sample", b.sample, "how many items of the file to draw requests from")
	f.IntVar(&b.rate, "rate", b.rate, "requests per second")
	f.DurationVar(&b.duration, "duration", b.duration, "length of each run")
	f.IntVar(&b.runs, "runs", b.runs, "number of runs")
	f.DurationVar(&b.warmup, "warmup", b.warmup, "untimed load before the first run")
	f.StringVar(&b.token, "token", os.Getenv("TWINSTAC_TOKEN"), "bearer token to send (env TWINSTAC_TOKEN); private collections need one")
	return cmd
}

func (b *benchGet) run(ctx context.Context, stdout io.Writer) error {
	u, err := url.Parse(b.url)
	if err != nil || u.Host == "" {
		return errors.New("--url must be the server's base URL")
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return errors.New("--url must point at this machine (127.0.0.1, ::1 or localhost)")
	}
	paths, err := samplePaths(b.file, b.sample)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}, Timeout: 10 * time.Second}
	if b.warmup > 0 {
		if _, err := b.load(ctx, client, paths, b.warmup); err != nil {
			return err
		}
	}
	var p99s []float64
	for i := range b.runs {
		r, err := b.load(ctx, client, paths, b.duration)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "run %d: %d requests at %.0f/s, errors %d; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
			i+1, r.n, r.rate, r.errors, r.p(50), r.p(90), r.p(99), r.p(100))
		p99s = append(p99s, r.p(99))
	}
	slices.Sort(p99s)
	fmt.Fprintf(stdout, "GET item at %d req/s, %d runs: p99 median %.2f ms (min %.2f, max %.2f)\n", b.rate, len(p99s), median(p99s), p99s[0], p99s[len(p99s)-1])
	return nil
}

// samplePaths reads item paths from the first n lines of an NDJSON file.
func samplePaths(file string, n int) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var paths []string
	for sc.Scan() && len(paths) < n {
		var head struct {
			ID         string `json:"id"`
			Collection string `json:"collection"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			return nil, err
		}
		paths = append(paths, "/collections/"+url.PathEscape(head.Collection)+"/items/"+url.PathEscape(head.ID))
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s holds no items", file)
	}
	return paths, sc.Err()
}

type loadResult struct {
	n, errors int
	rate      float64
	lat       []float64 // ms, sorted
}

func (r loadResult) p(q float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q / 100 * float64(len(r.lat)-1))
	return r.lat[i]
}

// load sends requests at b.rate for d and measures each from its due time.
func (b *benchGet) load(ctx context.Context, client *http.Client, paths []string, d time.Duration) (loadResult, error) {
	total := int(float64(b.rate) * d.Seconds())
	interval := time.Second / time.Duration(b.rate)
	lat := make([]float64, total)
	failed := make([]bool, total)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				return loadResult{}, ctx.Err()
			case <-time.After(wait):
			}
		}
		path := paths[rand.IntN(len(paths))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
			if err != nil {
				failed[i] = true
				return
			}
			if b.token != "" {
				req.Header.Set("Authorization", "Bearer "+b.token)
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = errors.New(resp.Status)
				}
			}
			lat[i] = float64(time.Since(due).Microseconds()) / 1000
			failed[i] = err != nil
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := loadResult{n: total, rate: float64(total) / elapsed.Seconds(), lat: lat}
	for _, f := range failed {
		if f {
			r.errors++
		}
	}
	slices.Sort(r.lat)
	return r, nil
}
