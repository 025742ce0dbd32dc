package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/twinstac/twinstac/internal/events"
	"github.com/twinstac/twinstac/internal/testdb"
)

// TestServeRelaysEvents runs `twinstac serve` with the embedded NATS
// server and with the one of TWINSTAC_TEST_NATS_URL, follows GET /events
// while a collection is made, and checks that a followed stream does not
// hold up the shutdown.
func TestServeRelaysEvents(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"embedded", "nats"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			var b [4]byte
			_, _ = rand.Read(b[:])
			node := "serve-test-" + hex.EncodeToString(b[:])
			args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--node", node, "--workers", "0"}
			if kind == "nats" {
				url := testdb.ServiceURL(t, "TWINSTAC_TEST_NATS_URL")
				args = append(args, "--nats-url", url)
				t.Cleanup(func() {
					nc, err := events.Connect(url, "test")
					if err != nil {
						return
					}
					defer nc.Close()
					if js, err := jetstream.New(nc); err == nil {
						_ = js.DeleteStream(context.Background(), events.StreamName(node))
					}
				})
			}
			pr, pw := io.Pipe()
			var stderr strings.Builder
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			root := newRoot(pw, &stderr)
			root.SetArgs(args)
			done := make(chan error, 1)
			go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
			rd := bufio.NewReader(pr)
			line, _ := rd.ReadString('\n')
			base := strings.TrimSpace(strings.TrimPrefix(line, "twinstac listening on "))
			adminLine, _ := rd.ReadString('\n')
			secret := strings.TrimSpace(adminLine[strings.LastIndex(adminLine, " ")+1:])
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			if !strings.HasPrefix(base, "http://") {
				t.Fatalf("serve printed %q\n%s", line, stderr.String())
			}

			req, _ := http.NewRequest("GET", base+"/events?type=collection.*", nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer "+secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET /events: %d", resp.StatusCode)
			}
			coll := `{"type":"Collection","id":"relayed","description":"d","license":"CC-BY-4.0","extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}}}`
			creq, _ := http.NewRequest("POST", base+"/collections", strings.NewReader(coll))
			creq.Header.Set("Authorization", "Bearer "+secret)
			creq.Header.Set("Content-Type", "application/json")
			cresp, err := http.DefaultClient.Do(creq)
			if err != nil {
				t.Fatal(err)
			}
			cresp.Body.Close()
			if cresp.StatusCode != 201 {
				t.Fatalf("creating a collection: %d", cresp.StatusCode)
			}
			got := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "data: ") {
						got <- sc.Text()
						return
					}
				}
			}()
			select {
			case data := <-got:
				if !strings.Contains(data, `"type":"collection.created"`) || !strings.Contains(data, `"subject":"collections/relayed"`) {
					t.Fatalf("event: %s", data)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no event within 30 s\n%s", stderr.String())
			}
			if kind == "embedded" {
				if _, err := os.Stat(filepath.Join(dir, "nats", "jetstream")); err != nil {
					t.Fatalf("the embedded NATS server keeps no streams in the data folder: %v", err)
				}
			}

			// The stream still open, the server stops.
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("serve returned %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("serve did not stop within 15 s with an event stream open")
			}
		})
	}
}
