package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics counts requests for Prometheus: requests by route, method and
// status, bytes received and sent by route, and latency by route.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	h        http.Handler
}

// NewMetrics makes a registry of metrics of its own (plus the Go runtime's
// and the process's), served at /metrics.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lading_registry_requests_total", Help: "Requests answered, by route, method and status.",
	}, []string{"route", "method", "status"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lading_registry_received_bytes_total", Help: "Request body bytes read, by route.",
	}, []string{"route"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lading_registry_sent_bytes_total", Help: "Response body bytes written, by route.",
	}, []string{"route"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lading_registry_request_duration_seconds", Help: "Time to answer a request, by route and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method"})
	m.reg.MustRegister(m.requests, m.bytesIn, m.bytesOut, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.h = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// Registry returns the Prometheus registry, to add collectors to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) handler() http.Handler { return m.h }

func (m *Metrics) observe(method string, rt route, status int, in, out int64, d time.Duration) {
	r := string(rt)
	m.requests.WithLabelValues(r, method, strconv.Itoa(status)).Inc()
	if in > 0 {
		m.bytesIn.WithLabelValues(r).Add(float64(in))
	}
	if out > 0 {
		m.bytesOut.WithLabelValues(r).Add(float64(out))
	}
	m.latency.WithLabelValues(r, method).Observe(d.Seconds())
}
