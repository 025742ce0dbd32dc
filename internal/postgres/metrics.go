package postgres

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the connection pool's statistics to Prometheus.
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
}
