package openapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
	"github.com/twinstac/twinstac/internal/events"
	"github.com/twinstac/twinstac/jobs"
	"github.com/twinstac/twinstac/workers"
)

// Version is the API version in the OpenAPI document.
const Version = "0.1.0"

// Config tunes the HTTP API.
type Config struct {
	// PublicURL is the external base URL; empty derives it from requests.
	PublicURL string
	// MaxBodyBytes caps JSON request bodies (default 10 MiB).
	MaxBodyBytes int64
	// CORS says which browser origins may call the API.
	CORS CORS
	// RateLimit limits requests per token; zero is unlimited.
	RateLimit RateLimit
	// PrivateMetrics serves /metrics to admins only (default: anyone,
	// as Prometheus scrapers expect).
	PrivateMetrics bool
	// CollectionCreators, when set, is the group whose members may
	// create collections (admins always may); empty lets every
	// signed-in user.
	CollectionCreators string
	// CountBudget bounds the time a search spends counting its matches
	// (numberMatched, left out when the budget runs out); 0 means
	// DefaultCountBudget, a negative value turns counting off.
	CountBudget time.Duration
	// SyncWait bounds how long a synchronous execution waits for its job
	// before it answers as a job (DefaultSyncWait when 0).
	SyncWait time.Duration
	// Callbacks says which addresses subscriber callbacks may reach.
	Callbacks workers.CallbackPolicy
}

// Deps are what the API needs to serve.
type Deps struct {
	Catalog *catalog.Service
	// Tokens authenticates bearer tokens and manages API tokens; nil
	// serves every caller as anonymous (document export).
	Tokens *access.Tokens
	// Authz decides what callers may do; nil allows only what ownership,
	// visibility and admin rights allow.
	Authz *access.Authorizer
	// Quotas are the per-user limits; nil: none.
	Quotas *access.Quotas
	// OIDC verifies OIDC JWTs; nil accepts none.
	OIDC *access.OIDC
	// Jobs submits and lists jobs; nil: the server runs no jobs (the job
	// operations answer 503).
	Jobs *jobs.Service
	// Events follows the node's event stream for GET /events; nil: the
	// feed is served as pages from the outbox only (following it live
	// answers 503).
	Events *events.Hub
	// Ready checks the stores for /readyz.
	Ready func(ctx context.Context) error
	// Registry collects metrics; nil makes a private one.
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// Server is the twinstac HTTP API.
type Server struct {
	cfg     Config
	deps    Deps
	api     huma.API
	mux     *http.ServeMux
	handler http.Handler
	metrics *metrics
	// derived caches the queryables derived from collections' items.
	derived derivedCache
}

// New builds the API and registers every operation.
func New(cfg Config, deps Deps) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps, mux: http.NewServeMux()}
	s.metrics = newMetrics(deps.Registry)
	s.api = humago.New(s.mux, apiConfig())
	s.api.UseMiddleware(s.metrics.middleware, keepRequest)
	registerSchemas(s.api.OpenAPI().Components.Schemas)

	s.registerLanding()
	s.registerCollections()
	s.registerItems()
	s.registerSearch()
	s.registerQueryables()
	s.registerAggregate()
	s.registerLifecycle()
	s.registerAssets()
	s.registerBulk()
	s.registerHealth()
	s.registerAuth()
	s.registerShares()
	s.registerPolicies()
	s.registerQuotas()
	s.registerUsage()
	s.registerProcesses()
	s.registerBatches()
	s.registerSaves()
	s.registerJobShares()
	s.registerJobLogs()
	s.registerEvents()
	s.registerValidation()
	addRequestExamples(s.api.OpenAPI())
	metricsHandler := promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{})
	s.mux.Handle("GET /metrics", s.metrics.observe("metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.PrivateMetrics {
			if err := requireAdmin(r.Context()); err != nil {
				writeProblem(w, r, err)
				return
			}
		}
		metricsHandler.ServeHTTP(w, r)
	})))
	s.tidyDocument()
	s.registerSpec()

	s.handler = withRequestContext(deps.Logger, withCORS(cfg.CORS, s.authenticate(s.rateLimit(http.HandlerFunc(s.route)))))
	return s
}

// route dispatches on the mux. The landing page is registered as "GET /",
// which the standard mux treats as a subtree; other unknown paths must
// still be 404.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	if pattern != "" && (r.URL.Path == "/" || pattern != "GET /") {
		s.mux.ServeHTTP(w, r)
		return
	}
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" && p != "GET /" {
			allowed = append(allowed, m)
		}
	}
	s.metrics.observe("notFound", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeProblemDetail(w, r, &Problem{Status: http.StatusMethodNotAllowed, Title: http.StatusText(http.StatusMethodNotAllowed),
				Detail: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + strings.Join(allowed, ", "), RequestID: RequestID(r.Context())})
			return
		}
		writeProblem(w, r, catalog.Errorf(catalog.ENOTFOUND, "no such resource: %s %s", r.Method, r.URL.Path))
	})).ServeHTTP(w, r)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// API returns the huma API (for the exported document).
func (s *Server) API() huma.API { return s.api }

// init sets huma's process-wide settings once, before any server exists:
// concurrent servers (tests) would otherwise race on them.
func init() {
	installErrors()
	huma.DefaultArrayNullable = false
}

// encoded is a response body the server encoded as JSON itself (items,
// pages, collections): written as it is. encoding/json would otherwise
// validate and compact every byte of it again, which for a page of
// items costs more than building it.
type encoded interface{ encodedJSON() []byte }

// jsonFormat writes encoded bodies as they are and everything else as
// huma does.
var jsonFormat = huma.Format{
	Marshal: func(w io.Writer, v any) error {
		if e, ok := v.(encoded); ok {
			_, err := w.Write(e.encodedJSON())
			return err
		}
		return huma.DefaultJSONFormat.Marshal(w, v)
	},
	Unmarshal: huma.DefaultJSONFormat.Unmarshal,
}

func apiConfig() huma.Config {
	c := huma.DefaultConfig("twinstac", Version)
	c.Formats = map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
	c.OpenAPIPath, c.DocsPath, c.SchemasPath = "", "", ""
	c.CreateHooks = nil // no $schema members or Link headers: STAC clients do not expect them
	c.Info.Description = "twinstac serves a STAC API catalog of digital-twin assets (twins, models, tools, data, functions) and their results, each item with a lifecycle and its files in a blob store."
	c.Info.License = &huma.License{Name: "Apache-2.0", URL: "https://www.apache.org/licenses/LICENSE-2.0"}
	c.Info.Contact = &huma.Contact{Name: "twinstac", URL: "https://github.com/twinstac/twinstac"}
	c.Servers = []*huma.Server{{URL: "/", Description: "this server"}}
	c.Tags = []*huma.Tag{
		{Name: "Capabilities", Description: "The landing page, conformance classes and the API description."},
		{Name: "Collections", Description: "STAC collections: groups of items such as a library of twins or a results collection."},
		{Name: "Items", Description: "STAC items: twins, models, tools, data, functions, results and snapshots."},
		{Name: "Lifecycle", Description: "Moving items through draft, published, deprecated, archived and deleted."},
		{Name: "Assets", Description: "Uploading and downloading the files of items."},
		{Name: "Access", Description: "Who the caller is, and API tokens."},
		{Name: "Health", Description: "Liveness and readiness probes."},
		{Name: "Accounting", Description: "Usage records of jobs, added up by user, process and day."},
	}
	c.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearerAuth": {Type: "http", Scheme: "bearer", Description: "An API token from POST /auth/tokens (tst_…), or an OIDC access token. Without one the caller is anonymous; a token that is not valid (unknown, revoked, expired) is a 401 on every operation."},
	}
	return c
}

// optionalAuth: the operation serves anonymous callers and signed-in ones.
var optionalAuth = []map[string][]string{{}, {"bearerAuth": {}}}

// requiredAuth: the operation needs a signed-in caller.
var requiredAuth = []map[string][]string{{"bearerAuth": {}}}

// operation fills the fields every operation shares.
func (s *Server) operation(id, method, path, tag, summary, desc string, status int, errs ...int) huma.Operation {
	return huma.Operation{
		OperationID:      id,
		Method:           method,
		Path:             path,
		Tags:             []string{tag},
		Summary:          summary,
		Description:      desc,
		DefaultStatus:    status,
		Errors:           append(errs, http.StatusUnauthorized, http.StatusTooManyRequests),
		Security:         optionalAuth,
		MaxBodyBytes:     s.cfg.MaxBodyBytes,
		SkipValidateBody: true,
	}
}
