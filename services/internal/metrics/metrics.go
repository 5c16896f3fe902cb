// Package metrics holds the Prometheus instruments shared by the services.
// They live on the default registry: one process runs one service, and the
// Go runtime/process collectors come with it for free.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// VotesAccepted counts votes handed to the sink (queue or database).
	VotesAccepted = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ladder_votes_accepted_total",
		Help: "Votes accepted by the vote service, by option.",
	}, []string{"option"})

	// VotesRejected counts refused requests by reason, so a spike of bad
	// clients is distinguishable from backend failures.
	VotesRejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ladder_votes_rejected_total",
		Help: "Vote requests refused, by reason.",
	}, []string{"reason"})

	// BatchSize observes votes per database write (worker and direct mode).
	BatchSize = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ladder_batch_size_votes",
		Help:    "Votes per database write batch.",
		Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000},
	}, []string{"source"})

	// BatchDuration observes the time to commit one batch.
	BatchDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ladder_batch_commit_seconds",
		Help:    "Time to commit one vote batch to the database.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"source"})

	// Drained counts votes the worker committed and removed from the queue.
	Drained = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ladder_worker_drained_votes_total",
		Help: "Votes committed to the database and acknowledged on the queue.",
	})

	// Requeued counts votes moved back from dead workers' processing lists.
	Requeued = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ladder_worker_requeued_votes_total",
		Help: "Votes re-queued from processing lists of workers whose heartbeat expired.",
	})

	// Poison counts queue payloads that could not be decoded and were dropped.
	Poison = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ladder_worker_invalid_payloads_total",
		Help: "Queue payloads dropped because they were not valid votes.",
	})

	// WorkerStandby is 1 while the worker's writer-region gate keeps it
	// from applying votes (DYNAMODB_DEFAULT_WRITER_REGION set and the
	// writer region is another, or not known yet), else 0.
	WorkerStandby = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "ladder_worker_standby",
		Help: "1 while this worker leaves votes queued because its region is not the writer region, else 0.",
	})

	// SSEClients is the number of connected Server-Sent Events clients.
	SSEClients = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "ladder_result_sse_clients",
		Help: "Connected Server-Sent Events clients.",
	})

	// TallyUpdates counts change notifications received from PostgreSQL.
	TallyUpdates = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ladder_result_tally_notifications_total",
		Help: "Tally change notifications received via LISTEN.",
	})

	// RequestDuration is the HTTP latency histogram of every service.
	RequestDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ladder_http_request_duration_seconds",
		Help:    "HTTP request latency by route, method and status code.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"route", "method", "code"})
)
