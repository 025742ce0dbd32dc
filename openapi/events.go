package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/events"
	"github.com/twinstac/twinstac/jobs"
)

// Event is one change on the node, from the outbox.
type Event struct {
	Seq     int64           `json:"seq" doc:"The event's place in the node's change feed; pass it as after (or Last-Event-ID) to read on from it."`
	ID      string          `json:"id" doc:"The event's id, stable across nodes."`
	Type    string          `json:"type" doc:"What changed: collection.created, item.state_changed, job.successful, …" example:"item.created"`
	Subject string          `json:"subject" doc:"What the event is about: collections/<id>, collections/<id>/items/<id>, jobs/<id>, …"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload" doc:"The event's details; for items and collections the collection, id and state, for jobs the job id, process, status, attempt, batch and owner."`
}

// EventPage is a page of the change feed.
type EventPage struct {
	Events []Event `json:"events"`
	Next   int64   `json:"next" doc:"Pass as after to read the events that follow. It moves past events the caller may not see or the filters leave out, so a page may hold fewer than limit events, even none."`
}

type eventsInput struct {
	Type        []string `query:"type,explode" doc:"Only events of these types, repeated or comma-separated: a type (item.created), or a kind followed by .* (item.*, job.*) for every type of that kind."`
	Collection  []string `query:"collection,explode" doc:"Only events of items and collections of these collections, repeated or comma-separated (job and other events are left out)."`
	After       int64    `query:"after" minimum:"0" doc:"Return the events after this seq."`
	Limit       int      `query:"limit" minimum:"1" maximum:"10000" default:"100" doc:"The most events a page reads (not a stream)."`
	Accept      string   `header:"Accept" doc:"text/event-stream follows the events live."`
	LastEventID string   `header:"Last-Event-ID" doc:"Resume after this seq (what an event stream's client sends when it reconnects)."`
}

type eventsOutput struct {
	Body func(huma.Context)
}

// eventKeepAlive is how often a quiet event stream sends a comment, so
// that proxies keep it open.
const eventKeepAlive = 15 * time.Second

// typeFilterForm is a type filter: a type, or a kind followed by .*.
var typeFilterForm = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$`)

func (s *Server) registerEvents() {
	op := s.operation("getEvents", http.MethodGet, "/events", "Capabilities", "Follow the node's events",
		"The node's change feed: every change to collections and items, every job status and the node's audit events, in the order of their seq. "+
			"With Accept: text/event-stream it follows them live as server-sent events (id: the seq, event: the type, data: the Event as JSON; comment lines keep a quiet stream open) and resumes after Last-Event-ID (or after); "+
			"otherwise it returns a page. Filter with type (item.created, or item.* for every item event; repeated or comma-separated) and collection. "+
			"Callers see what they may read: anonymous callers the events of public collections and their published items; signed-in users also those of the collections and items they may read (drafts only where they may edit them, or own the item), and the events of their jobs, of jobs of their twins and of jobs shared with them; administrators every event, audit events included. "+
			"The same events are published on NATS (subjects twinstac.<node>.items.<collection>.<event>, twinstac.<node>.collections.<collection>.<event>, twinstac.<node>.jobs.<status>.<job>, twinstac.<node>.<kind>.<event>; ids escaped as %XX) for services.",
		http.StatusOK, 400, 503)
	schema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(EventPage{}), true, "")
	op.Responses = map[string]*huma.Response{
		"200": {Description: "A page of events, or the events followed live.", Content: map[string]*huma.MediaType{
			mediaJSON:           {Schema: schema},
			"text/event-stream": {Schema: &huma.Schema{Type: "string", Description: "Server-sent events: id is the event's seq, event its type, data the Event as JSON."}},
		}},
	}
	huma.Register(s.api, op, func(ctx context.Context, in *eventsInput) (*eventsOutput, error) {
		f, err := parseEventFilter(in.Type, in.Collection)
		if err != nil {
			return nil, err
		}
		after := in.After
		if in.LastEventID != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(in.LastEventID), 10, 64)
			if err != nil || n < 0 {
				return nil, catalog.Invalid("header.Last-Event-ID", "Last-Event-ID %q is not an event seq", in.LastEventID)
			}
			after = max(after, n)
		}
		if s.deps.Catalog == nil {
			return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server keeps no events")
		}
		v := &eventViewer{s: s, caller: CallerOf(ctx)}
		hub := s.deps.Events
		if strings.Contains(in.Accept, "text/event-stream") {
			if hub == nil {
				return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server follows no event stream")
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			sub, head, err := hub.Subscribe(sctx)
			cancel()
			if err != nil {
				return nil, err
			}
			return &eventsOutput{Body: func(hctx huma.Context) {
				defer sub.Close()
				s.followEvents(hctx, v, f, sub, head, after)
			}}, nil
		}
		page, err := s.eventPage(ctx, v, f, after, in.Limit)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(page)
		if err != nil {
			return nil, err
		}
		return &eventsOutput{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", mediaJSON)
			_, _ = hctx.BodyWriter().Write(b)
		}}, nil
	})
}

// eventFilter is what the caller asked for.
type eventFilter struct {
	types, kinds, collections []string
}

func parseEventFilter(types, collections []string) (*eventFilter, error) {
	f := &eventFilter{}
	for _, t := range splitCommas(types) {
		if !typeFilterForm.MatchString(t) {
			return nil, catalog.Invalid("query.type", "type %q is neither an event type (item.created) nor a kind followed by .* (item.*)", t)
		}
		if kind, ok := strings.CutSuffix(t, "*"); ok {
			f.kinds = append(f.kinds, kind)
		} else {
			f.types = append(f.types, t)
		}
	}
	for _, c := range splitCommas(collections) {
		f.collections = append(f.collections, c)
	}
	return f, nil
}

func splitCommas(vs []string) []string {
	var out []string
	for _, v := range vs {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// matches reports whether the filter lets ev through.
func (f *eventFilter) matches(ev *catalog.Event) bool {
	if len(f.types)+len(f.kinds) > 0 && !slices.Contains(f.types, ev.Type) &&
		!slices.ContainsFunc(f.kinds, func(k string) bool { return strings.HasPrefix(ev.Type, k) }) {
		return false
	}
	if len(f.collections) > 0 {
		if !isCatalogEvent(ev) {
			return false
		}
		var p catalog.EventPayload
		if json.Unmarshal(ev.Payload, &p) != nil || !slices.Contains(f.collections, p.Collection) {
			return false
		}
	}
	return true
}

func isCatalogEvent(ev *catalog.Event) bool {
	return strings.HasPrefix(ev.Type, "item.") || strings.HasPrefix(ev.Type, "collection.")
}

// eventViewer decides which events a caller sees, remembering for the
// length of one request what it looked up (owners of items and jobs do
// not change).
type eventViewer struct {
	s          *Server
	caller     *access.Caller
	itemOwners map[string]string
	jobs       map[string]bool
	// shared are the jobs and batches shared with the caller, as of
	// sharedAt: shares come and go during a followed stream, so they are
	// looked up again after sharedMaxAge.
	shared   *jobs.Visibility
	sharedAt time.Time
}

// sharedMaxAge is how long an eventViewer trusts the shares it looked up.
const sharedMaxAge = time.Second

// maxRemembered bounds what an eventViewer remembers.
const maxRemembered = 10000

// sees reports whether the caller may see ev. Failures to decide hide
// the event.
func (v *eventViewer) sees(ctx context.Context, ev *catalog.Event) bool {
	c := v.caller
	switch {
	case !c.InScope(access.ActionRead):
		return false
	case c.IsAdmin():
		return true
	case isCatalogEvent(ev):
		return v.seesCatalogEvent(ctx, ev)
	case strings.HasPrefix(ev.Type, "job."):
		return v.seesJobEvent(ctx, ev)
	}
	return false // audit events: administrators only
}

func (v *eventViewer) seesCatalogEvent(ctx context.Context, ev *catalog.Event) bool {
	var p catalog.EventPayload
	if json.Unmarshal(ev.Payload, &p) != nil {
		return false
	}
	s, c := v.s, v.caller
	coll, err := s.deps.Catalog.CachedCollection(ctx, p.Collection)
	if err != nil {
		return false // gone: its events are for administrators
	}
	readable, err := s.deps.Authz.CanReadCollection(ctx, c, coll)
	if err != nil {
		return false
	}
	if strings.HasPrefix(ev.Type, "collection.") || p.ID == "" {
		return readable
	}
	if !readable {
		readable, _ = s.deps.Authz.Can(ctx, c, coll, access.ActionRead, access.ItemResource(coll.ID, p.ID))
	}
	if readable && p.State != catalog.StateDraft {
		return true
	}
	if readable {
		if ok, _ := s.seesDrafts(ctx, coll, p.ID); ok {
			return true
		}
	}
	// The item's own owner sees it (results and snapshots belong to who
	// made them).
	if c.IsAnonymous() {
		return false
	}
	key := p.Collection + "/" + p.ID
	owner, ok := v.itemOwners[key]
	if !ok {
		it, err := s.deps.Catalog.GetItem(ctx, p.Collection, p.ID)
		if err != nil {
			return false
		}
		owner = it.Owner()
		v.itemOwners = remember(v.itemOwners, key, owner)
	}
	return owner != "" && owner == c.User
}

func (v *eventViewer) seesJobEvent(ctx context.Context, ev *catalog.Event) bool {
	c := v.caller
	if c.IsAnonymous() {
		return false
	}
	var p jobs.EventPayload
	if json.Unmarshal(ev.Payload, &p) != nil {
		return false
	}
	if p.Owner == c.User {
		return true
	}
	// Shared with the caller, one by one or by its batch (the payload
	// names both; neither changes).
	if v.shared == nil || time.Since(v.sharedAt) > sharedMaxAge {
		shared, err := v.s.jobVisibility(ctx, c)
		if err != nil {
			return false
		}
		v.shared, v.sharedAt = shared, time.Now()
	}
	if v.shared.Sees(&jobs.Job{ID: p.ID, Batch: p.Batch}) {
		return true
	}
	// Of the caller's twins: ownership does not change, so it is
	// remembered.
	if seen, ok := v.jobs[p.ID]; ok {
		return seen
	}
	if v.s.deps.Jobs == nil {
		return false
	}
	j, err := v.s.deps.Jobs.Store.GetJob(ctx, p.ID)
	if err != nil {
		return false
	}
	seen := jobs.Visible(j, c.User)
	v.jobs = remember(v.jobs, p.ID, seen)
	return seen
}

func remember[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil || len(m) >= maxRemembered {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// eventPage reads one page of the outbox after after, up to where the
// relay has published when there is a stream (events past it may still
// be missing earlier ones), and keeps what the caller sees and asked for.
func (s *Server) eventPage(ctx context.Context, v *eventViewer, f *eventFilter, after int64, limit int) (*EventPage, error) {
	evs, err := s.deps.Catalog.Store.ListEvents(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	page := &EventPage{Events: []Event{}, Next: after}
	head, bounded := int64(0), false
	if s.deps.Events != nil {
		head, bounded = s.deps.Events.Head()
		if !bounded {
			return page, nil // the stream is not followed yet: nothing is known to be complete
		}
	}
	for _, ev := range evs {
		if bounded && ev.Seq > head {
			break
		}
		page.Next = ev.Seq
		if f.matches(ev) && v.sees(ctx, ev) {
			page.Events = append(page.Events, apiEvent(ev))
		}
	}
	return page, nil
}

func apiEvent(ev *catalog.Event) Event {
	return Event{Seq: ev.Seq, ID: ev.ID, Type: ev.Type, Subject: ev.Subject, Time: ev.Time, Payload: ev.Payload}
}

// followEvents streams events as server-sent events until the client
// goes or the server stops: first those of the outbox after after, up to
// head (where the subscription starts), then those of the subscription.
// Sequences missing from what it sent (holes in the outbox the relay
// moved past) are remembered, so that an event that commits late is sent
// once when the relay publishes it.
func (s *Server) followEvents(hctx huma.Context, v *eventViewer, f *eventFilter, sub *events.Subscription, head, after int64) {
	r, w := humago.Unwrap(hctx)
	ctx := r.Context()
	flush := startStream(w)
	st := &eventStream{w: w, last: after, missing: map[int64]bool{}}
	send := func(ev *catalog.Event) error {
		if !f.matches(ev) || !v.sees(ctx, ev) {
			return nil
		}
		return st.write(ev)
	}
	// replay sends the outbox's events up to head.
	replay := func(head int64) error {
		for st.last < head {
			evs, err := s.deps.Catalog.Store.ListEvents(ctx, st.last, 1000)
			if err != nil {
				return err
			}
			sent := false
			for _, ev := range evs {
				if ev.Seq > head {
					break
				}
				st.advance(ev.Seq)
				if err := send(ev); err != nil {
					return err
				}
				sent = true
			}
			if !sent {
				// The outbox holds nothing more up to head: the rest
				// are holes.
				st.advance(head + 1)
				st.last = head
				delete(st.missing, head+1)
			}
			flush()
		}
		return nil
	}
	if err := replay(head); err != nil {
		return
	}
	keepAlive := time.NewTicker(eventKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flush()
		case ev, ok := <-sub.C:
			if !ok {
				if !sub.Lagged() {
					return // the server is stopping
				}
				// Fallen behind: catch up from the outbox.
				var err error
				sub, head, err = s.deps.Events.Subscribe(ctx)
				if err != nil {
					return
				}
				defer sub.Close()
				if err := replay(head); err != nil {
					return
				}
				continue
			}
			switch {
			case ev.Seq > st.last:
				st.advance(ev.Seq)
			case st.missing[ev.Seq]:
				delete(st.missing, ev.Seq)
			default:
				continue // sent already
			}
			if err := send(ev); err != nil {
				return
			}
			flush()
		}
	}
}

// eventStream is where a followed feed stands.
type eventStream struct {
	w    http.ResponseWriter
	last int64
	// missing are the sequences below last not seen yet.
	missing map[int64]bool
}

// maxMissing bounds the holes a stream remembers; the newest are kept.
const maxMissing = 4096

// advance moves the stream to seq, remembering the sequences it skips.
func (st *eventStream) advance(seq int64) {
	for s := max(st.last+1, seq-maxMissing); s < seq; s++ {
		st.missing[s] = true
	}
	if len(st.missing) > maxMissing {
		for s := range st.missing {
			if s < seq-maxMissing {
				delete(st.missing, s)
			}
		}
	}
	st.last = max(st.last, seq)
}

// write sends one event; its id is where the stream stands (the event's
// seq, except for an event that committed late).
func (st *eventStream) write(ev *catalog.Event) error {
	b, err := json.Marshal(apiEvent(ev))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(st.w, "id: %d\nevent: %s\ndata: %s\n\n", st.last, ev.Type, b)
	return err
}
