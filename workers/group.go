package workers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// group runs the calls that the jobs of a worker make at once as one
// call of do, as a database's group commit does: while one group is
// being written, the calls that come meanwhile wait and go together in
// the next. A call that finds nothing in flight goes at once, so
// grouping adds no wait to a lone job; under load the groups grow by
// themselves. The zero value is not usable: see newGroup.
type group[In, Out any] struct {
	// do runs a group and returns one result per input, in order; an
	// error fails the whole group.
	do  func(ctx context.Context, in []In) ([]Out, error)
	max int
	// alone, when set, says whether an error of a group of several
	// calls may be the fault of one of them: the calls are then written
	// each on its own, so that the fault stays that call's.
	alone func(error) bool
	// idle is called when the group has nothing left to do (nil: none).
	idle func()
	// timeout bounds each write: the calls wait for their group whatever
	// their own contexts say, so a database that hangs would otherwise
	// hold them, and the jobs' handlers, for as long as it hangs.
	timeout time.Duration

	mu      sync.Mutex
	waiting []*groupCall[In, Out]
	busy    bool
}

type groupCall[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

// groupWriteTimeout is how long a group's write may take: a write of a
// few dozen rows takes milliseconds, one that waits a minute is stuck.
const groupWriteTimeout = time.Minute

// errNoAnswer is a group write cut off by its timeout. Its calls are not
// written again one by one: the database is not answering.
var errNoAnswer = errors.New("no answer")

func newGroup[In, Out any](max int, do func(context.Context, []In) ([]Out, error)) *group[In, Out] {
	return &group[In, Out]{do: do, max: max, timeout: groupWriteTimeout}
}

// call runs in with the others waiting now. It waits for the result even
// when ctx ends meanwhile: the change may have been made, and the caller
// must know.
func (g *group[In, Out]) call(ctx context.Context, in In) (Out, error) {
	c := &groupCall[In, Out]{in: in, done: make(chan struct{})}
	g.mu.Lock()
	g.waiting = append(g.waiting, c)
	if !g.busy {
		g.busy = true
		go g.drain(context.WithoutCancel(ctx))
	}
	g.mu.Unlock()
	<-c.done
	return c.out, c.err
}

// drain runs the waiting calls, a group at a time, until none is left.
func (g *group[In, Out]) drain(ctx context.Context) {
	for {
		g.mu.Lock()
		n := min(len(g.waiting), max(g.max, 1))
		if n == 0 {
			g.busy = false
			g.mu.Unlock()
			if g.idle != nil {
				g.idle()
			}
			return
		}
		calls := make([]*groupCall[In, Out], n)
		copy(calls, g.waiting)
		g.waiting = append(g.waiting[:0], g.waiting[n:]...)
		g.mu.Unlock()

		in := make([]In, n)
		for i, c := range calls {
			in[i] = c.in
		}
		out, err := g.run(ctx, in)
		if err != nil && n > 1 && g.alone != nil && !errors.Is(err, errNoAnswer) && g.alone(err) {
			for _, c := range calls {
				c.out, c.err = g.runOne(ctx, c.in)
				close(c.done)
			}
			continue
		}
		for i, c := range calls {
			if err != nil {
				c.err = err
			} else {
				c.out = out[i]
			}
			close(c.done)
		}
	}
}

// runOne writes one call as a group of its own.
func (g *group[In, Out]) runOne(ctx context.Context, in In) (Out, error) {
	out, err := g.run(ctx, []In{in})
	if err != nil {
		var zero Out
		return zero, err
	}
	return out[0], nil
}

// groups are groups by a key, such as the collection a group of result
// items goes to. A key's group is forgotten when it is idle.
type groups[In, Out any] struct {
	max   int
	do    func(ctx context.Context, key string, in []In) ([]Out, error)
	alone func(error) bool // as group.alone

	mu sync.Mutex
	by map[string]*group[In, Out]
}

func (g *groups[In, Out]) call(ctx context.Context, key string, in In) (Out, error) {
	g.mu.Lock()
	if g.by == nil {
		g.by = map[string]*group[In, Out]{}
	}
	gr, ok := g.by[key]
	if !ok {
		gr = newGroup(g.max, func(ctx context.Context, in []In) ([]Out, error) { return g.do(ctx, key, in) })
		gr.alone, gr.idle = g.alone, func() { g.forget(key, gr) }
		g.by[key] = gr
	}
	g.mu.Unlock()
	return gr.call(ctx, in)
}

// forget drops the group of key if it is gr and idle. A caller that took
// gr from the map just before still runs in it; the next one makes a new
// group.
func (g *groups[In, Out]) forget(key string, gr *group[In, Out]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr.mu.Lock()
	idle := !gr.busy && len(gr.waiting) == 0
	gr.mu.Unlock()
	if idle && g.by[key] == gr {
		delete(g.by, key)
	}
}

// run calls do, turning a panic or a short answer into an error of the
// group: it runs outside the task handlers, whose recover would not see
// it, and would stop the worker.
func (g *group[In, Out]) run(ctx context.Context, in []In) (out []Out, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("writing a group of %d: panic: %v", len(in), p)
		}
	}()
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	out, err = g.do(ctx, in)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("writing a group of %d: %w within %v: %w", len(in), errNoAnswer, g.timeout, err)
	}
	if err == nil && len(out) != len(in) {
		return nil, fmt.Errorf("writing a group of %d: %d results", len(in), len(out))
	}
	return out, err
}
