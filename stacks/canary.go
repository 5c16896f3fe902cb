package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
)

// CanaryProps aim the synthetic check at a rung's public endpoints.
type CanaryProps struct {
	RepoRoot string
	// VoteURL is the public vote endpoint (POST vote=a|b); a token is fine.
	VoteURL *string
	// ResultURL is the public result base URL: ResultURL/events is the SSE
	// stream of tallies.
	ResultURL *string
	// Every is the schedule, whole minutes; default 5 minutes.
	Every awscdk.Duration
	// Namespace is the CloudWatch namespace of the metrics; default "Ladder/Canary".
	Namespace string
	// AlarmAction, when set, is notified when an alarm fires and recovers.
	AlarmAction awscloudwatch.IAlarmAction
	// LatencyThreshold is the vote-to-result latency that, exceeded in
	// three periods in a row, raises LatencyAlarm; default 10 seconds.
	LatencyThreshold awscdk.Duration
	LogRetention     awslogs.RetentionDays
}

// Canary votes for a dedicated test voter through the public endpoint on a
// schedule and confirms the vote reaches the result side (lambda-src/canary
// explains how). It publishes Success and Latency through Embedded Metric
// Format log lines, so its role needs no CloudWatch permission.
type Canary struct {
	constructs.Construct
	Function awslambda.Function
	// Success is 1 per successful run and 0 per failed one (Minimum per period).
	Success awscloudwatch.Metric
	// Latency is milliseconds from the vote POST to the new tally on the
	// result side (Maximum per period), only from successful runs.
	Latency awscloudwatch.Metric
	// FailureAlarm fires when runs fail in 2 of 3 periods, or do not run:
	// missing data is breaching, because a canary that stopped is a failure.
	FailureAlarm awscloudwatch.Alarm
	// LatencyAlarm fires when successful runs are slower than the threshold
	// in 3 periods in a row (missing data is FailureAlarm's business).
	LatencyAlarm awscloudwatch.Alarm
}

// Metric names and dimension written by lambda-src/canary (main.go).
const (
	canaryMetricSuccess = "Success"
	canaryMetricLatency = "Latency"
	canaryDimension     = "Canary"
)

func NewCanary(scope constructs.Construct, id string, props CanaryProps) *Canary {
	if props.VoteURL == nil || props.ResultURL == nil {
		panic(fmt.Sprintf("Canary %s: VoteURL and ResultURL are required", id))
	}
	c := constructs.NewConstruct(scope, s(id))
	every := props.Every
	if every == nil {
		every = awscdk.Duration_Minutes(n(5))
	}
	minutes := *every.ToMinutes(nil)
	if minutes < 1 || minutes != float64(int(minutes)) {
		panic(fmt.Sprintf("Canary %s: Every must be a whole number of minutes, at least 1 (got %v)", id, minutes))
	}
	namespace := props.Namespace
	if namespace == "" {
		namespace = "Ladder/Canary"
	}
	latencyThreshold := props.LatencyThreshold
	if latencyThreshold == nil {
		latencyThreshold = awscdk.Duration_Seconds(n(10))
	}

	fn := NewGoFunction(c, "Handler", GoFunctionProps{
		RepoRoot:    props.RepoRoot,
		Name:        "canary",
		Description: "Synthetic vote through the public endpoint, checked on the result side",
		Environment: map[string]*string{
			"VOTE_URL":         props.VoteURL,
			"RESULT_URL":       props.ResultURL,
			"METRIC_NAMESPACE": s(namespace),
		},
		// A run waits at most ~40 s (10 s per step); the handler stops 2 s
		// before this to write its metric.
		Timeout:      awscdk.Duration_Seconds(n(60)),
		MemorySize:   128,
		LogRetention: props.LogRetention,
	})
	// A failed check is not retried: a retry would cast more votes and blur
	// the per-run metric, and the next scheduled run comes soon enough.
	fn.Function.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{
		RetryAttempts: n(0),
		MaxEventAge:   awscdk.Duration_Seconds(n(60)),
	})
	awsevents.NewRule(c, s("Schedule"), &awsevents.RuleProps{
		Description: s("Runs the voting canary"),
		Schedule:    awsevents.Schedule_Rate(every),
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn.Function, &awseventstargets.LambdaFunctionProps{
			RetryAttempts: n(0),
			MaxEventAge:   awscdk.Duration_Seconds(n(60)),
		})},
	})

	dims := &map[string]*string{canaryDimension: fn.Function.FunctionName()}
	success := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: s(namespace), MetricName: s(canaryMetricSuccess), DimensionsMap: dims,
		Statistic: s("Minimum"), Period: every,
	})
	latency := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: s(namespace), MetricName: s(canaryMetricLatency), DimensionsMap: dims,
		Statistic: s("Maximum"), Period: every, Unit: awscloudwatch.Unit_MILLISECONDS,
	})
	failure := awscloudwatch.NewAlarm(c, s("FailureAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription:   s("The voting canary failed (or did not run) in 2 of the last 3 periods: a vote through the public endpoint did not reach the result side. The canary's log has the reason."),
		Metric:             success,
		Threshold:          n(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  n(3),
		DatapointsToAlarm:  n(2),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	})
	slow := awscloudwatch.NewAlarm(c, s("LatencyAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription:   s(fmt.Sprintf("Votes took longer than %v ms to reach the result side in 3 periods in a row (canary).", *latencyThreshold.ToMilliseconds(nil))),
		Metric:             latency,
		Threshold:          latencyThreshold.ToMilliseconds(nil),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  n(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	if props.AlarmAction != nil {
		for _, a := range []awscloudwatch.Alarm{failure, slow} {
			a.AddAlarmAction(props.AlarmAction)
			a.AddOkAction(props.AlarmAction)
		}
	}
	return &Canary{Construct: c, Function: fn.Function, Success: success, Latency: latency, FailureAlarm: failure, LatencyAlarm: slow}
}
