package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// queryTimings is a pgx tracer that times every query and COPY, by the
// statement's first keyword (SELECT, INSERT, UPDATE, DELETE, COPY, ...),
// which keeps the label set small.
type queryTimings struct {
	hist *prometheus.HistogramVec
}

func newQueryTimings() *queryTimings {
	return &queryTimings{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "twinstac_postgres_query_duration_seconds",
		Help:    "PostgreSQL statement latency by statement kind and outcome.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"statement", "outcome"})}
}

type traceKey struct{}

type traceStart struct {
	kind  string
	start time.Time
}

func statementKind(sql string) string {
	sql = strings.TrimSpace(sql)
	for strings.HasPrefix(sql, "--") {
		_, rest, _ := strings.Cut(sql, "\n")
		sql = strings.TrimSpace(rest)
	}
	kind, _, _ := strings.Cut(sql, " ")
	kind = strings.ToUpper(strings.TrimRight(kind, "(;\n\t"))
	switch kind {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "COPY", "BEGIN", "COMMIT", "ROLLBACK", "CREATE", "ALTER", "DROP":
		return kind
	}
	return "OTHER"
}

// TraceQueryStart implements pgx.QueryTracer.
func (q *queryTimings) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{kind: statementKind(data.SQL), start: time.Now()})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (q *queryTimings) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	q.observe(ctx, data.Err)
}

// TraceCopyFromStart implements pgx.CopyFromTracer.
// COPYs are told apart by target, so that the cost of the outbox rows of
// a bulk load shows beside that of its items.
func (q *queryTimings) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	kind := "COPY items"
	if n := len(data.TableName); n > 0 && data.TableName[n-1] == "outbox" {
		kind = "COPY outbox"
	} else if n > 0 && strings.HasPrefix(data.TableName[n-1], "bulk_") {
		kind = "COPY staging"
	}
	return context.WithValue(ctx, traceKey{}, traceStart{kind: kind, start: time.Now()})
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (q *queryTimings) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromEndData) {
	q.observe(ctx, data.Err)
}

func (q *queryTimings) observe(ctx context.Context, err error) {
	st, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	q.hist.WithLabelValues(st.kind, outcome).Observe(time.Since(st.start).Seconds())
}

// Collector exports the connection pool's statistics and the statement
// timings to Prometheus.
type Collector struct {
	s                                       *Store
	total, idle, acquired, maxConns         *prometheus.Desc
	acquireCount, acquireWait, emptyAcquire *prometheus.Desc
	canceledAcquire                         *prometheus.Desc
}

// NewCollector returns a collector of s's pool statistics.
func NewCollector(s *Store) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("twinstac_postgres_pool_"+name, help, nil, nil)
	}
	return &Collector{
		s:               s,
		total:           d("connections", "Open connections."),
		idle:            d("idle_connections", "Idle connections."),
		acquired:        d("acquired_connections", "Connections in use."),
		maxConns:        d("max_connections", "The pool's maximum size."),
		acquireCount:    d("acquires_total", "Connections acquired from the pool."),
		acquireWait:     d("acquire_wait_seconds_total", "Time spent waiting for a connection."),
		emptyAcquire:    d("empty_acquires_total", "Acquires that had to wait for a connection."),
		canceledAcquire: d("canceled_acquires_total", "Acquires canceled by their context."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.maxConns, c.acquireCount, c.acquireWait, c.emptyAcquire, c.canceledAcquire} {
		ch <- d
	}
	c.s.timings.hist.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.total, float64(st.TotalConns()))
	g(c.idle, float64(st.IdleConns()))
	g(c.acquired, float64(st.AcquiredConns()))
	g(c.maxConns, float64(st.MaxConns()))
	k(c.acquireCount, float64(st.AcquireCount()))
	k(c.acquireWait, st.AcquireDuration().Seconds())
	k(c.emptyAcquire, float64(st.EmptyAcquireCount()))
	k(c.canceledAcquire, float64(st.CanceledAcquireCount()))
	c.s.timings.hist.Collect(ch)
}
