package workers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinstac/twinstac/internal/testdb"
)

// TestGroupCoalesces: calls that come while a group is written go
// together in the next, at most max at a time, each getting its own
// result; a lone call goes at once.
func TestGroupCoalesces(t *testing.T) {
	release := make(chan struct{})
	started := make(chan []int, 10)
	g := newGroup(4, func(_ context.Context, in []int) ([]string, error) {
		started <- in
		<-release
		out := make([]string, len(in))
		for i, x := range in {
			out[i] = fmt.Sprint(x * 10)
		}
		return out, nil
	})
	var wg sync.WaitGroup
	results := make([]string, 7)
	call := func(i int) {
		defer wg.Done()
		out, err := g.call(t.Context(), i)
		if err != nil {
			t.Error(err)
		}
		results[i] = out
	}
	// The first call is written alone, at once.
	wg.Add(1)
	go call(0)
	if first := <-started; len(first) != 1 || first[0] != 0 {
		t.Fatalf("first group %v, want [0]", first)
	}
	// Six more come while it is written: they wait, and go as groups of
	// at most four.
	for i := 1; i <= 6; i++ {
		wg.Add(1)
		go call(i)
	}
	testdb.WaitFor(t, 10*time.Second, "six calls waiting", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.waiting) == 6
	})
	close(release)
	second, third := <-started, <-started
	if len(second) != 4 || len(third) != 2 {
		t.Fatalf("groups after the first: %v and %v, want 4 and 2 calls", second, third)
	}
	wg.Wait()
	for i, r := range results {
		if r != fmt.Sprint(i*10) {
			t.Fatalf("call %d got %q", i, r)
		}
	}
	g.mu.Lock()
	busy := g.busy
	g.mu.Unlock()
	if busy {
		t.Fatal("the group is still busy with nothing to do")
	}
}

// TestGroupError: an error of the whole group is every call's.
func TestGroupError(t *testing.T) {
	boom := errors.New("boom")
	g := newGroup(8, func(context.Context, []int) ([]int, error) { return nil, boom })
	if _, err := g.call(t.Context(), 1); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
}

// TestGroupsByKey: keys are grouped apart, and a key's group is
// forgotten once idle.
func TestGroupsByKey(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string][]int{}
	)
	gs := &groups[int, int]{max: 10, do: func(_ context.Context, key string, in []int) ([]int, error) {
		mu.Lock()
		seen[key] = append(seen[key], in...)
		mu.Unlock()
		return in, nil
	}}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"a", "b"}[i%2]
			if out, err := gs.call(t.Context(), key, i); err != nil || out != i {
				t.Errorf("call %d: %d, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	for _, key := range []string{"a", "b"} {
		if len(seen[key]) != 10 {
			t.Fatalf("key %s got %v", key, seen[key])
		}
		for _, x := range seen[key] {
			if []string{"a", "b"}[x%2] != key {
				t.Fatalf("call %d went to key %s", x, key)
			}
		}
	}
	testdb.WaitFor(t, 10*time.Second, "the idle groups to be forgotten", func() bool {
		gs.mu.Lock()
		defer gs.mu.Unlock()
		return len(gs.by) == 0
	})
}

// TestGroupPanic: a panic while writing a group fails its calls; the
// group goes on with the next.
func TestGroupPanic(t *testing.T) {
	g := newGroup(8, func(_ context.Context, in []int) ([]int, error) {
		if in[0] == 0 {
			panic("boom")
		}
		return in, nil
	})
	if _, err := g.call(t.Context(), 0); err == nil {
		t.Fatal("a panicking group succeeded")
	}
	if out, err := g.call(t.Context(), 1); err != nil || out != 1 {
		t.Fatalf("the next group: %d, %v", out, err)
	}
}

// TestGroupAlone: a group that fails with an error that may be one
// call's is written again call by call, each getting its own result.
func TestGroupAlone(t *testing.T) {
	bad := errors.New("bad input")
	release := make(chan struct{})
	var groupsRun []int
	var mu sync.Mutex
	g := newGroup(8, func(_ context.Context, in []int) ([]int, error) {
		mu.Lock()
		groupsRun = append(groupsRun, len(in))
		mu.Unlock()
		if in[0] == -1 {
			<-release
		}
		for _, x := range in {
			if x == 13 {
				return nil, bad
			}
		}
		return in, nil
	})
	g.alone = func(err error) bool { return errors.Is(err, bad) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = g.call(t.Context(), -1) }()
	testdb.WaitFor(t, 10*time.Second, "the first group to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(groupsRun) == 1
	})
	results := make([]error, 3)
	for i, x := range []int{1, 13, 2} {
		wg.Add(1)
		go func() { defer wg.Done(); _, results[i] = g.call(t.Context(), x) }()
	}
	testdb.WaitFor(t, 10*time.Second, "three calls waiting", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.waiting) == 3
	})
	close(release)
	wg.Wait()
	if results[0] != nil || !errors.Is(results[1], bad) || results[2] != nil {
		t.Fatalf("results %v: only the call of 13 fails", results)
	}
	if want := []int{1, 3, 1, 1, 1}; !slices.Equal(groupsRun, want) {
		t.Fatalf("groups written %v, want %v", groupsRun, want)
	}
}

// A write that hangs ends with an error after the group's timeout, for
// every call of its group, though the callers' contexts never end.
func TestGroupWriteTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	g := newGroup(8, func(ctx context.Context, in []int) ([]int, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-release:
			return in, nil
		}
	})
	g.timeout = 50 * time.Millisecond
	var alone int
	var mu sync.Mutex
	g.alone = func(error) bool { mu.Lock(); alone++; mu.Unlock(); return true }
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := g.call(context.Background(), i)
			errs <- err
		}()
	}
	for range 3 {
		select {
		case err := <-errs:
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errNoAnswer) || !strings.Contains(err.Error(), "no answer within 50ms") {
				t.Fatalf("a hung write: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the calls of a hung write still wait")
		}
	}
	// A hung group is not written again call by call.
	_, err := g.call(context.Background(), 9)
	if !errors.Is(err, errNoAnswer) {
		t.Fatalf("a lone hung write: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if alone != 0 {
		t.Fatalf("alone was asked %d times about a write with no answer", alone)
	}
}
