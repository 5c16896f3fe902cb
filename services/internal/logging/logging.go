// Package logging sets up the services' structured logs: JSON, one event per
// line on stdout, each tagged with the service name, so a log shipper
// (CloudWatch agent, Fluent Bit) can index them without parsing text.
package logging

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// New returns a JSON logger for service at the level named by LOG_LEVEL
// (debug, info, warn, error; default info) and makes it the default logger.
func New(service string) *slog.Logger {
	return NewTo(os.Stdout, service, os.Getenv("LOG_LEVEL"))
}

// NewTo is New writing to w at the named level; tests use it to capture logs.
func NewTo(w io.Writer, service, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("service", service)
	slog.SetDefault(log)
	return log
}
