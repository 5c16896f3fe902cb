// Command canary is a scheduled synthetic check of a rung's public voting
// path: it casts a vote for a dedicated test voter through the public vote
// endpoint and confirms that the result side shows it (see Run for how, and
// why that is robust to real traffic), then publishes the outcome as
// CloudWatch metrics that the rung's alarms watch.
//
// Metrics are written as CloudWatch Embedded Metric Format (EMF) log lines,
// not with PutMetricData: the function then needs no CloudWatch permission
// at all (PutMetricData cannot be scoped to a namespace by resource, only by
// condition), no extra API call can fail or throttle after the check, and
// the metric sits in the same log event as the reason for a failure.
// CloudWatch extracts the metrics from the function's log group.
//
// Environment: VOTE_URL, RESULT_URL, METRIC_NAMESPACE (required);
// CANARY_WAIT (default 10s) bounds each wait for the result side.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// Metric names and the dimension, shared with stacks/canary.go.
const (
	MetricSuccess = "Success"
	MetricLatency = "Latency"
	DimensionName = "Canary"
)

// Settings is the function's configuration from its environment.
type Settings struct {
	Config
	Namespace string
	// Name is the dimension value: the function's name, which the stack
	// also knows, so its alarms select exactly this canary's metrics.
	Name string
}

// SettingsFromEnv reads and validates the environment.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{Config: Config{
		VoteURL:   strings.TrimSpace(getenv("VOTE_URL")),
		ResultURL: strings.TrimSpace(getenv("RESULT_URL")),
		Wait:      10 * time.Second,
	}, Namespace: strings.TrimSpace(getenv("METRIC_NAMESPACE")), Name: getenv("AWS_LAMBDA_FUNCTION_NAME")}
	var problems []string
	for _, v := range []struct{ name, val string }{{"VOTE_URL", s.VoteURL}, {"RESULT_URL", s.ResultURL}} {
		if !strings.HasPrefix(v.val, "https://") && !strings.HasPrefix(v.val, "http://") {
			problems = append(problems, fmt.Sprintf("%s must be an http(s) URL, got %q", v.name, v.val))
		}
	}
	if s.Namespace == "" {
		problems = append(problems, "METRIC_NAMESPACE is required")
	}
	if w := getenv("CANARY_WAIT"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("CANARY_WAIT must be a positive duration, got %q", w))
		}
		s.Wait = d
	}
	if s.Name == "" {
		s.Name = "local"
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("canary configuration: %s", strings.Join(problems, "; "))
	}
	return s, nil
}

// WriteEMF writes the outcome as one EMF log line: Success (1 or 0) always,
// Latency (ms) only when the run succeeded, so a failure does not drag the
// latency statistics towards 0.
func WriteEMF(w io.Writer, s Settings, o Outcome, now time.Time) error {
	metrics := []map[string]string{{"Name": MetricSuccess, "Unit": "Count"}}
	line := map[string]any{
		DimensionName: s.Name,
		"voterId":     VoterID,
		"steps":       o.Steps,
	}
	if o.Success {
		metrics = append(metrics, map[string]string{"Name": MetricLatency, "Unit": "Milliseconds"})
		line[MetricSuccess] = 1
		line[MetricLatency] = float64(o.Latency.Microseconds()) / 1000
		line["message"] = "canary vote reached the result side"
	} else {
		line[MetricSuccess] = 0
		line["message"] = "canary failed: " + o.Reason
		line["reason"] = o.Reason
	}
	line["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  s.Namespace,
			"Dimensions": [][]string{{DimensionName}},
			"Metrics":    metrics,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// handle runs one check. A failed check is reported through the metric and
// returns nil: the function worked, the system under test did not, and a
// Lambda retry would only cast more votes. Only a misconfiguration is an
// error (it also shows as Success=0 first, so the alarm sees it).
func handle(ctx context.Context, s Settings, cfgErr error, out io.Writer) error {
	if cfgErr != nil {
		_ = WriteEMF(out, s, Outcome{Reason: cfgErr.Error()}, time.Now())
		return cfgErr
	}
	// Leave time to write the metric before Lambda's own timeout.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-2*time.Second))
		defer cancel()
	}
	o := Run(ctx, s.Config)
	return WriteEMF(out, s, o, time.Now())
}

func main() {
	s, err := SettingsFromEnv(os.Getenv)
	s.Client = NewClient()
	lambda.Start(func(ctx context.Context, _ json.RawMessage) error {
		return handle(ctx, s, err, os.Stdout)
	})
}
