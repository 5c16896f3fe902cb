// Package httpserver runs a service's HTTP listener the same way in every
// service: /healthz (the process is alive), /readyz (its dependencies answer),
// /metrics (Prometheus), request metrics and logs, and a graceful shutdown
// that lets in-flight requests finish when the context ends (SIGTERM).
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ladder-cdk/ladder/services/internal/metrics"
)

// Check reports whether one dependency is usable.
type Check func(ctx context.Context) error

// Options configure Run.
type Options struct {
	// Addr is the listen address, e.g. ":8080".
	Addr string
	// Handler serves the service's own routes; it is wrapped with request
	// metrics. /healthz, /readyz and /metrics are added in front of it.
	Handler http.Handler
	// Ready maps a dependency name (redis, postgres) to its check.
	Ready map[string]Check
	// ShutdownTimeout bounds how long in-flight requests may take to finish.
	ShutdownTimeout time.Duration
	// OnShutdown runs after the listener stopped accepting and in-flight
	// requests finished (or timed out); e.g. flush a batcher.
	OnShutdown func(ctx context.Context)
	Log        *slog.Logger
}

// Mux returns the handler Run serves: health, readiness and metrics
// endpoints in front of opts.Handler. Exposed so tests can drive it with
// httptest without opening a port.
func Mux(opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for name, check := range opts.Ready {
			if err := check(ctx); err != nil {
				status[name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	mux.Handle("GET /metrics", promhttp.Handler())
	if opts.Handler != nil {
		mux.Handle("/", opts.Handler)
	}
	return instrument(mux)
}

// Run serves until ctx ends, then shuts down gracefully. It returns nil
// after a clean shutdown and an error if the listener failed.
func Run(ctx context.Context, opts Options) error {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 20 * time.Second
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	return Serve(ctx, ln, opts)
}

// Serve is Run on an existing listener (tests pass one on port 0).
func Serve(ctx context.Context, ln net.Listener, opts Options) error {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           Mux(opts),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// Requests keep the server's base context, not ctx: SIGTERM must not
		// cancel a request that is already in flight.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", opts.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if opts.OnShutdown != nil {
		opts.OnShutdown(sctx)
	}
	if err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// statusWriter records the response code for metrics. It forwards Flush so
// Server-Sent Events keep working through the wrapper.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r)
		// The matched pattern (set by the innermost ServeMux), not the raw
		// path, keeps label cardinality bounded.
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		metrics.RequestDuration.WithLabelValues(pattern, r.Method, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	})
}

// Probe GETs http://127.0.0.1:<port>/healthz and returns a process exit code
// (0 healthy, 1 not). Images are FROM scratch, with no curl or shell, so
// each binary answers `<binary> healthcheck` for compose and Docker itself.
func Probe(port int) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
