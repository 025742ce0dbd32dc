package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/catalog/cql2"
	"github.com/twinstac/twinstac/catalog/search"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// OGC API – Processes over published twins: a process is a runnable twin,
// <collection>:<item>; executing it makes a job.

// OGC API – Processes conformance classes the server implements.
const (
	confProcessesCallback    = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/callback"
	confProcessesCore        = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core"
	confProcessesDescription = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description"
	confProcessesJSON        = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json"
	confProcessesOAS30       = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30"
	confProcessesJobList     = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list"
	confProcessesDismiss     = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss"
)

// exceptionResultNotReady is the OGC exception type of results asked for
// too early.
const exceptionResultNotReady = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"

// ProcessSummary is a process in the list.
type ProcessSummary struct {
	ID                 string       `json:"id" example:"twins:water-tank" doc:"The process id: <collection>:<item> of the twin."`
	Title              string       `json:"title,omitempty"`
	Description        string       `json:"description,omitempty"`
	Version            string       `json:"version" doc:"The twin's version (its ETag): what a job submitted now runs."`
	JobControlOptions  []string     `json:"jobControlOptions" doc:"async-execute and dismiss; sync-execute too for twins that allow it."`
	OutputTransmission []string     `json:"outputTransmission"`
	Links              []LinkObject `json:"links"`
}

// ProcessList is a page of processes.
type ProcessList struct {
	Processes []ProcessSummary `json:"processes"`
	Links     []LinkObject     `json:"links"`
}

// ProcessDescription describes a process: its inputs from the twin's
// dt:parameters, and its output, the result item.
type ProcessDescription struct {
	ProcessSummary
	Inputs  map[string]InputDescription  `json:"inputs"`
	Outputs map[string]OutputDescription `json:"outputs"`
}

// InputDescription is one input of a process.
type InputDescription struct {
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Schema      any    `json:"schema" doc:"The input's schema, from the twin's dt:parameters."`
	MinOccurs   int    `json:"minOccurs"`
	MaxOccurs   int    `json:"maxOccurs"`
}

// OutputDescription is one output of a process.
type OutputDescription struct {
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Schema      any    `json:"schema"`
}

// ExecuteBody is an execution request.
type ExecuteBody struct {
	Inputs map[string]any `json:"inputs,omitempty" doc:"The inputs, as the process's description says (the twin's dt:parameters)."`
	// Restore names a snapshot to start from.
	Restore string `json:"restore,omitempty" doc:"A snapshot item, <collection>/<item>, whose state the run starts from." example:"twins-water-tank-snapshots/s1"`
	// ResultsCollection is where the result item goes.
	ResultsCollection string `json:"resultsCollection,omitempty" doc:"A collection the caller may create items in, for the result item; by default the twin's results collection, <collection>-<twin>-results." example:"my-water-tank-runs"`
	// Subscriber names callback URIs.
	Subscriber *Subscriber `json:"subscriber,omitempty" doc:"URLs the server POSTs to when the job starts (inProgressUri: its status), succeeds (successUri: its results) or fails or is dismissed (failedUri: the exception), retried with backoff. Internal addresses (loopback, private, link-local) are refused unless an administrator allows them."`
}

// Subscriber are the callback URIs of an execution (OGC API – Processes,
// callback class).
type Subscriber struct {
	SuccessURI    string `json:"successUri,omitempty" format:"uri" maxLength:"2048"`
	InProgressURI string `json:"inProgressUri,omitempty" format:"uri" maxLength:"2048"`
	FailedURI     string `json:"failedUri,omitempty" format:"uri" maxLength:"2048"`
}

// StatusInfo is a job's status (OGC statusInfo).
type StatusInfo struct {
	ProcessID string     `json:"processID"`
	Type      string     `json:"type" enum:"process"`
	JobID     string     `json:"jobID"`
	Status    string     `json:"status" enum:"accepted,running,successful,failed,dismissed"`
	Message   string     `json:"message,omitempty"`
	Created   *time.Time `json:"created,omitempty"`
	Started   *time.Time `json:"started,omitempty"`
	Finished  *time.Time `json:"finished,omitempty"`
	Updated   *time.Time `json:"updated,omitempty"`
	Progress  *int       `json:"progress,omitempty" minimum:"0" maximum:"100"`
	// Attempt and Usage are ours.
	Attempt int             `json:"dt:attempt" doc:"The attempts started so far (a lost worker's job runs again)."`
	Usage   json.RawMessage `json:"dt:usage,omitempty" doc:"What the job consumed: wall and CPU seconds, peak memory, bytes written."`
	Links   []LinkObject    `json:"links"`
}

// JobList is a page of jobs.
type JobList struct {
	Jobs  []StatusInfo `json:"jobs"`
	Links []LinkObject `json:"links"`
}

// ProcessPath is the path parameter of a process.
type ProcessPath struct {
	ProcessID string `path:"processId" doc:"The process id, <collection>:<item> of the twin." example:"twins:water-tank"`
}

// JobPath is the path parameter of a job.
type JobPath struct {
	JobID string `path:"jobId" doc:"The job id."`
}

type listProcessesInput struct {
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Token string `query:"token" doc:"The page token of a next link."`
}

type processListOutput struct {
	Body ProcessList
}

type processOutput struct {
	Body ProcessDescription
}

type executeInput struct {
	ProcessPath
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"200" doc:"The same key and request give back the job the first one made."`
	Prefer         string `header:"Prefer" doc:"respond-async runs a process that allows synchronous execution as a job all the same; wait=<seconds> shortens the synchronous wait."`
	Body           ExecuteBody
}

// executeOutput is a job's status (201, run as a job) or its results
// (200, run synchronously).
type executeOutput struct {
	Status            int
	Location          string `header:"Location"`
	PreferenceApplied string `header:"Preference-Applied"`
	Body              any
}

type statusOutput struct {
	Location string `header:"Location"`
	Body     StatusInfo
}

type listJobsInput struct {
	ProcessID []string `query:"processID,explode" doc:"Only jobs of these processes."`
	Status    []string `query:"status,explode" enum:"accepted,running,successful,failed,dismissed" doc:"Only jobs in these statuses."`
	Datetime  string   `query:"datetime" doc:"Only jobs created at this instant or in this interval (start/end, either open: ../end, start/..), RFC 3339." example:"2026-01-01T00:00:00Z/.."`
	Limit     int      `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Token     string   `query:"token" doc:"The page token of a next link (the last job id of the page before)."`
}

type jobListOutput struct {
	Body JobList
}

// Results are the outputs of a job by name, each a link (OGC results,
// transmitted by reference): "result" is the result item.
type Results map[string]LinkObject

type resultsOutput struct {
	Body Results
}

func (s *Server) registerProcesses() {
	op := s.operation("getProcesses", http.MethodGet, "/processes", "Processes", "List processes",
		"Lists the published twins the caller may see that can run, as OGC API – Processes processes.", http.StatusOK, 400)
	huma.Register(s.api, op, func(ctx context.Context, in *listProcessesInput) (*processListOutput, error) {
		return s.listProcesses(ctx, in)
	})

	op = s.operation("getProcessDescription", http.MethodGet, "/processes/{processId}", "Processes", "Describe a process",
		"Describes a process: its inputs, from the twin's dt:parameters, its output and how it may be run.", http.StatusOK, 400, 404)
	huma.Register(s.api, op, func(ctx context.Context, in *ProcessPath) (*processOutput, error) {
		p, err := s.process(ctx, in.ProcessID)
		if err != nil {
			return nil, err
		}
		return &processOutput{Body: describeProcess(s.baseURL(requestOf(ctx)), p)}, nil
	})

	op = s.operation("execute", http.MethodPost, "/processes/{processId}/execution", "Processes", "Execute a process",
		"Runs the twin as a job with the given inputs: 201 with the job's status and its Location. A process that allows synchronous execution (jobControlOptions sync-execute) runs synchronously unless Prefer: respond-async is sent: 200 with the results once the job is over, or, past the server's wait (or a shorter Prefer: wait=<seconds>), 201 as a job. Invalid inputs are a 400 listing every error; nothing is queued. Needs the execute right on the twin.",
		http.StatusCreated, 400, 401, 403, 404, 409, 500)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *executeInput) (*executeOutput, error) {
		return s.executeProcess(ctx, in)
	})
	s.documentExecute()

	op = s.operation("getJobs", http.MethodGet, "/jobs", "Processes", "List jobs",
		"Lists the jobs the caller may see, newest first: those it ran, those of the twins it owns and those shared with it, one by one or by their batch (admins: all).", http.StatusOK, 400, 401)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *listJobsInput) (*jobListOutput, error) {
		return s.listJobs(ctx, in)
	})

	op = s.operation("getStatus", http.MethodGet, "/jobs/{jobId}", "Processes", "Get a job's status",
		"The job's status, progress, times and usage.", http.StatusOK, 401, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *JobPath) (*statusOutput, error) {
		j, err := s.visibleJob(ctx, in.JobID)
		if err != nil {
			return nil, err
		}
		return &statusOutput{Body: s.statusInfo(ctx, j)}, nil
	})

	op = s.operation("getResult", http.MethodGet, "/jobs/{jobId}/results", "Processes", "Get a job's results",
		"The results of a successful job: links to its result items. 404 result-not-ready while it runs; the failure when it failed.", http.StatusOK, 401, 404, 500)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *JobPath) (*resultsOutput, error) {
		return s.jobResults(ctx, in.JobID)
	})

	op = s.operation("dismiss", http.MethodDelete, "/jobs/{jobId}", "Processes", "Dismiss a job",
		"Dismisses a job: a queued job never starts; a running one is stopped (SIGTERM to its processes, SIGKILL after a grace period) and ends dismissed.", http.StatusOK, 401, 403, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *JobPath) (*statusOutput, error) {
		j, err := s.visibleJob(ctx, in.JobID)
		if err != nil {
			return nil, err
		}
		c := CallerOf(ctx)
		if !c.IsAdmin() && j.Owner != c.User && j.TwinOwner != c.User {
			return nil, catalog.Errorf(catalog.EFORBIDDEN, "%s may not dismiss job %s", c.User, j.ID)
		}
		svc, err := s.jobService()
		if err != nil {
			return nil, err
		}
		if j, err = svc.Dismiss(ctx, j.ID); err != nil {
			return nil, err
		}
		return &statusOutput{Body: s.statusInfo(ctx, j)}, nil
	})
}

func (s *Server) jobService() (*jobs.Service, error) {
	if s.deps.Jobs == nil {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this server runs no jobs")
	}
	return s.deps.Jobs, nil
}

// process returns a process the caller may see. Codes: EINVALID,
// ENOTFOUND.
func (s *Server) process(ctx context.Context, id string) (*jobs.Process, error) {
	coll, item, err := jobs.ParseProcessID(id)
	if err != nil {
		return nil, err
	}
	it, err := s.readableItem(ctx, coll, item)
	if err != nil {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "process %q not found", id)
	}
	p, err := jobs.ProcessOf(it)
	if catalog.ErrorCode(err) == catalog.ECONFLICT {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "process %q not found: %v", id, err)
	}
	return p, err
}

func jobControl(p *jobs.Process) []string {
	if p.SyncExecute {
		return []string{"async-execute", "sync-execute", "dismiss"}
	}
	return []string{"async-execute", "dismiss"}
}

func processSummary(base string, p *jobs.Process) ProcessSummary {
	self := base + "/processes/" + url.PathEscape(p.ID)
	return ProcessSummary{
		ID: p.ID, Title: p.Title, Description: p.Description, Version: p.Version,
		JobControlOptions: jobControl(p), OutputTransmission: []string{"reference"},
		Links: []LinkObject{
			{Rel: "self", Href: self, Type: mediaJSON, Title: "The process description"},
			{Rel: "http://www.opengis.net/def/rel/ogc/1.0/execute", Href: self + "/execution", Type: mediaJSON, Title: "Execute"},
			{Rel: "describedby", Href: base + catalog.ItemPath(p.Collection, p.Item), Type: mediaGeoJSON, Title: "The twin"},
		},
	}
}

func describeProcess(base string, p *jobs.Process) ProcessDescription {
	d := ProcessDescription{ProcessSummary: processSummary(base, p), Inputs: map[string]InputDescription{},
		Outputs: map[string]OutputDescription{"result": {
			Title:       "The result item",
			Description: "A catalog item of kind result holding the files the twin wrote under outputs/.",
			Schema:      map[string]any{"type": "string", "format": "uri", "contentMediaType": mediaGeoJSON},
		}}}
	if p.Parameters != nil {
		required := map[string]bool{}
		for _, r := range p.Parameters.Required {
			required[r] = true
		}
		for name, ref := range p.Parameters.Properties {
			in := InputDescription{Schema: ref.Value, MaxOccurs: 1}
			if ref.Value != nil {
				in.Title, in.Description = ref.Value.Title, ref.Value.Description
			}
			if required[name] {
				in.MinOccurs = 1
			}
			d.Inputs[name] = in
		}
	}
	return d
}

func (s *Server) listProcesses(ctx context.Context, in *listProcessesInput) (*processListOutput, error) {
	se, err := s.searcher()
	if err != nil {
		return nil, err
	}
	a, err := s.searchAccess(ctx)
	if err != nil {
		return nil, err
	}
	f, err := cql2.ParseText(`"` + catalog.PropKind + `" = '` + catalog.KindDigitalTwin + `'`)
	if err != nil {
		return nil, catalog.Internal(err)
	}
	q := search.Query{Filter: f, States: []catalog.State{catalog.StatePublished}, Access: a, Limit: in.Limit,
		Sort: []search.SortKey{{Property: search.PropCollection}, {Property: search.PropID}}}
	if in.Token != "" {
		cur, before, err := search.DecodeToken(in.Token, q.Sort)
		if err != nil || before {
			return nil, catalog.Invalid("/token", "the page token is not one of this listing's")
		}
		q.After = cur
	}
	if err := search.Prepare(&q); err != nil {
		return nil, err
	}
	page, err := se.Search(ctx, &q)
	if err != nil {
		return nil, err
	}
	base := s.baseURL(requestOf(ctx))
	out := ProcessList{Processes: []ProcessSummary{}, Links: []LinkObject{{Rel: "self", Href: base + "/processes", Type: mediaJSON}}}
	for _, it := range page.Items {
		p, err := jobs.ProcessOf(it)
		if err != nil {
			continue // not runnable: no execute script, or parameters that are not a schema
		}
		out.Processes = append(out.Processes, processSummary(base, p))
	}
	if page.Next != nil {
		v := url.Values{"limit": {itoa(in.Limit)}, "token": {search.EncodeToken(page.Next, false)}}
		out.Links = append(out.Links, LinkObject{Rel: "next", Href: base + "/processes?" + v.Encode(), Type: mediaJSON})
	}
	return &processListOutput{Body: out}, nil
}

func (s *Server) executeProcess(ctx context.Context, in *executeInput) (*executeOutput, error) {
	svc, err := s.jobService()
	if err != nil {
		return nil, err
	}
	p, err := s.runnableProcess(ctx, in.ProcessID)
	if err != nil {
		return nil, err
	}
	req := workers.Request{Restore: in.Body.Restore, ResultsCollection: in.Body.ResultsCollection}
	if err := s.checkRestore(ctx, "/restore", req.Restore); err != nil {
		return nil, err
	}
	if err := s.checkResultsCollection(ctx, "/resultsCollection", req.ResultsCollection); err != nil {
		return nil, err
	}
	if sub := in.Body.Subscriber; sub != nil {
		for _, u := range []struct{ ptr, uri string }{
			{"/subscriber/successUri", sub.SuccessURI}, {"/subscriber/inProgressUri", sub.InProgressURI}, {"/subscriber/failedUri", sub.FailedURI},
		} {
			if err := s.cfg.Callbacks.CheckURI(u.ptr, u.uri); err != nil {
				return nil, err
			}
		}
		req.Subscriber = &workers.Subscriber{SuccessURI: sub.SuccessURI, InProgressURI: sub.InProgressURI, FailedURI: sub.FailedURI}
		req.BaseURL = s.baseURL(requestOf(ctx))
	}
	async, wait := parsePrefer(in.Prefer)
	req.Sync = p.SyncExecute && !async
	raw, _ := json.Marshal(req)
	if err := s.checkJobLimits(ctx, CallerOf(ctx), 1); err != nil {
		return nil, err
	}
	j, _, err := svc.Submit(ctx, jobs.Submission{Process: p, Owner: CallerOf(ctx).User, Inputs: in.Body.Inputs,
		Request: raw, IdempotencyKey: in.IdempotencyKey})
	if err != nil {
		return nil, err
	}
	out := &executeOutput{Status: http.StatusCreated}
	if req.Sync {
		if wait <= 0 || wait > s.syncWait() {
			wait = s.syncWait()
		}
		if j, err = s.awaitJob(ctx, svc.Store, j.ID, wait); err != nil {
			return nil, err
		}
		if j.Status.Final() {
			res, err := s.jobResults(ctx, j.ID)
			if err != nil {
				return nil, err
			}
			return &executeOutput{Status: http.StatusOK, Body: res.Body}, nil
		}
	} else if async && p.SyncExecute {
		out.PreferenceApplied = "respond-async"
	}
	info := s.statusInfo(ctx, j)
	out.Location, out.Body = info.Links[0].Href, info
	return out, nil
}

// DefaultSyncWait is how long a synchronous execution waits for its job
// by default before it answers as a job.
const DefaultSyncWait = 30 * time.Second

func (s *Server) syncWait() time.Duration {
	if s.cfg.SyncWait > 0 {
		return s.cfg.SyncWait
	}
	return DefaultSyncWait
}

// parsePrefer reads the preferences of an execution (RFC 7240):
// respond-async, and wait=<seconds>.
func parsePrefer(h string) (async bool, wait time.Duration) {
	for _, part := range strings.Split(h, ",") {
		for _, pref := range strings.Split(part, ";") {
			name, val, _ := strings.Cut(strings.TrimSpace(pref), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "respond-async":
				async = true
			case "wait":
				if n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`)); err == nil && n >= 0 {
					wait = time.Duration(n) * time.Second
				}
			}
		}
	}
	return async, wait
}

// awaitJob waits until a job is over, or wait has passed, and returns it
// as it is then.
func (s *Server) awaitJob(ctx context.Context, st jobs.Store, id string, wait time.Duration) (*jobs.Job, error) {
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	for {
		j, err := st.GetJob(ctx, id)
		if err != nil || j.Status.Final() || time.Now().After(deadline) {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, nil
		case <-time.After(min(pause, time.Until(deadline))):
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

// documentExecute describes the two answers of an execution: the job's
// status (201) and, when it ran synchronously, its results (200).
func (s *Server) documentExecute() {
	doc := s.api.OpenAPI()
	op := doc.Paths["/processes/{processId}/execution"].Post
	reg := doc.Components.Schemas
	status := reg.Schema(reflect.TypeOf(StatusInfo{}), true, "")
	results := reg.Schema(reflect.TypeOf(Results{}), true, "")
	op.Responses["201"] = &huma.Response{Description: "Run as a job: its status; Location names it.",
		Headers: op.Responses["201"].Headers,
		Content: map[string]*huma.MediaType{mediaJSON: {Schema: status}}}
	op.Responses["200"] = &huma.Response{Description: "Run synchronously: the job's results.",
		Content: map[string]*huma.MediaType{mediaJSON: {Schema: results}}}
}

// runnableProcess returns a process the caller may run: the execute
// right on the twin. Codes: EINVALID, ENOTFOUND, EFORBIDDEN.
func (s *Server) runnableProcess(ctx context.Context, id string) (*jobs.Process, error) {
	p, err := s.process(ctx, id)
	if err != nil {
		return nil, err
	}
	coll, err := s.readableCollectionCached(ctx, p.Collection)
	if err != nil {
		return nil, err
	}
	if err := s.require(ctx, coll, access.ActionExecute, access.ItemResource(p.Collection, p.Item)); err != nil {
		return nil, err
	}
	return p, nil
}

// checkResultsCollection checks that the caller may have results put
// into a collection ("" is the twin's default): it exists and the caller
// may create items in it. Codes: EINVALID at ptr, EFORBIDDEN.
func (s *Server) checkResultsCollection(ctx context.Context, ptr, id string) error {
	if id == "" {
		return nil
	}
	if err := catalog.CheckID(ptr, id); err != nil {
		return err
	}
	if _, err := s.writableCollection(ctx, id, access.ActionCreate, access.ItemResource(id, "*")); err != nil {
		if catalog.ErrorCode(err) == catalog.ENOTFOUND {
			return catalog.Invalid(ptr, "collection %q not found: create it first, or leave resultsCollection out for the twin's own", id)
		}
		return err
	}
	return nil
}

// checkRestore checks that a run's restore names a snapshot the caller
// may read ("" restores nothing). Codes: EINVALID at ptr.
func (s *Server) checkRestore(ctx context.Context, ptr, restore string) error {
	if restore == "" {
		return nil
	}
	c, i, ok := jobs.ParseRef(restore)
	if !ok {
		return catalog.Invalid(ptr, "restore %q is not <collection>/<item>", restore)
	}
	snap, err := s.readableItem(ctx, c, i)
	if err != nil {
		return catalog.Invalid(ptr, "snapshot %q not found", restore)
	}
	if kind, _, _ := snap.Props.String("", catalog.PropKind); kind != catalog.KindSnapshot {
		return catalog.Invalid(ptr, "item %q is not a snapshot", restore)
	}
	if snap.State != catalog.StatePublished && snap.State != catalog.StateDeprecated {
		return catalog.Invalid(ptr, "snapshot %q is %s: its state is not stored (yet)", restore, snap.State)
	}
	return nil
}

// jobCaller returns the job service and the caller, who must be signed
// in to see jobs.
func (s *Server) jobCaller(ctx context.Context) (*jobs.Service, *access.Caller, error) {
	svc, err := s.jobService()
	if err != nil {
		return nil, nil, err
	}
	c := CallerOf(ctx)
	if c.IsAnonymous() {
		return nil, nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "sign in to see jobs")
	}
	return svc, c, nil
}

// visibleJob returns a job the caller may see, or 404.
func (s *Server) visibleJob(ctx context.Context, id string) (*jobs.Job, error) {
	svc, c, err := s.jobCaller(ctx)
	if err != nil {
		return nil, err
	}
	j, err := svc.Store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.IsAdmin() || jobs.Visible(j, c.User) {
		return j, nil
	}
	v, err := s.jobVisibility(ctx, c)
	if err != nil {
		return nil, err
	}
	if !v.Sees(j) {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "job %s not found", id)
	}
	return j, nil
}

func (s *Server) statusInfo(ctx context.Context, j *jobs.Job) StatusInfo {
	base := s.baseURL(requestOf(ctx))
	self := base + "/jobs/" + url.PathEscape(j.ID)
	created, updated := j.Created, j.Updated
	info := StatusInfo{ProcessID: j.Process, Type: "process", JobID: j.ID, Status: string(j.Status), Message: j.Message,
		Created: &created, Updated: &updated, Started: j.Started, Finished: j.Finished, Attempt: j.Attempt, Usage: j.Usage,
		Links: []LinkObject{
			{Rel: "self", Href: self, Type: mediaJSON, Title: "This job"},
			{Rel: "up", Href: base + "/jobs", Type: mediaJSON, Title: "Jobs"},
			{Rel: "process", Href: base + "/processes/" + url.PathEscape(j.Process), Type: mediaJSON, Title: "The process"},
		}}
	if j.Progress >= 0 {
		p := j.Progress
		info.Progress = &p
	}
	if j.Status == jobs.StatusSuccessful {
		info.Links = append(info.Links, LinkObject{Rel: "http://www.opengis.net/def/rel/ogc/1.0/results", Href: self + "/results", Type: mediaJSON, Title: "Results"})
	}
	return info
}

func (s *Server) listJobs(ctx context.Context, in *listJobsInput) (*jobListOutput, error) {
	svc, c, err := s.jobCaller(ctx)
	if err != nil {
		return nil, err
	}
	q := jobs.Query{Limit: in.Limit, After: in.Token}
	if q.Visible, err = s.jobVisibility(ctx, c); err != nil {
		return nil, err
	}
	if len(in.ProcessID) > 1 {
		return nil, catalog.Invalid("/processID", "give one processID")
	}
	if len(in.ProcessID) == 1 {
		q.Process = in.ProcessID[0]
	}
	for _, st := range in.Status {
		q.Statuses = append(q.Statuses, jobs.Status(st))
	}
	if q.CreatedFrom, q.CreatedTo, err = catalog.ParseInterval("query.datetime", in.Datetime); err != nil {
		return nil, err
	}
	list, err := svc.Store.ListJobs(ctx, q)
	if err != nil {
		return nil, err
	}
	base := s.baseURL(requestOf(ctx))
	out := JobList{Jobs: make([]StatusInfo, 0, len(list)), Links: []LinkObject{{Rel: "self", Href: base + "/jobs", Type: mediaJSON}}}
	for _, j := range list {
		out.Jobs = append(out.Jobs, s.statusInfo(ctx, j))
	}
	if len(list) == in.Limit {
		v := url.Values{"limit": {itoa(in.Limit)}, "token": {list[len(list)-1].ID}}
		for _, p := range in.ProcessID {
			v.Add("processID", p)
		}
		for _, st := range in.Status {
			v.Add("status", st)
		}
		if in.Datetime != "" {
			v.Set("datetime", in.Datetime)
		}
		out.Links = append(out.Links, LinkObject{Rel: "next", Href: base + "/jobs?" + v.Encode(), Type: mediaJSON})
	}
	return &jobListOutput{Body: out}, nil
}

func (s *Server) jobResults(ctx context.Context, id string) (*resultsOutput, error) {
	j, err := s.visibleJob(ctx, id)
	if err != nil {
		return nil, err
	}
	switch j.Status {
	case jobs.StatusSuccessful:
	case jobs.StatusFailed:
		var exc map[string]any
		_ = json.Unmarshal(j.Exception, &exc)
		detail, _ := exc["detail"].(string)
		return nil, &Problem{Type: "https://twinstac.org/problems/job-failed", Title: "The job failed", Status: http.StatusInternalServerError,
			Detail: detail, Code: "job_failed", RequestID: RequestID(ctx)}
	default:
		return nil, &Problem{Type: exceptionResultNotReady, Title: "Result not ready", Status: http.StatusNotFound,
			Detail: "job " + j.ID + " is " + string(j.Status) + "; its results are there once it is successful",
			Code:   "result_not_ready", RequestID: RequestID(ctx)}
	}
	base := s.baseURL(requestOf(ctx))
	out := Results{}
	for _, ref := range j.Results {
		c, i, ok := jobs.ParseRef(ref)
		if !ok {
			continue
		}
		out["result"] = LinkObject{Href: base + catalog.ItemPath(c, i), Type: mediaGeoJSON, Rel: "item"}
	}
	return &resultsOutput{Body: out}, nil
}
