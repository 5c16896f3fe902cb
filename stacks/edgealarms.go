package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
)

// Defaults of EdgeAlarmsProps' thresholds.
const (
	DefaultCdn5xxErrorRatePercent = 5
	DefaultCdnOriginLatencyP99Ms  = 2000
)

// EdgeAlarmsProps watch a rung's CloudFront distributions.
type EdgeAlarmsProps struct {
	// StackProps' region is replaced by us-east-1; the account is kept.
	awscdk.StackProps
	// Sites are the distributions to watch (VoteAppCdn.Sites()).
	Sites []CdnSite
	// AlarmEmail is subscribed to this stack's alarm topic when set.
	AlarmEmail string
	// ErrorRatePercent is the share of viewer requests answered 5xx, over
	// five minutes, that raises the alarm (0 means the default, 5 %).
	ErrorRatePercent float64
	// OriginLatencyP99Ms is the p99 origin time-to-first-byte, over five
	// minutes, that raises the alarm (0 means the default, 2000 ms).
	OriginLatencyP99Ms float64
}

// EdgeAlarms is a small stack in us-east-1, because CloudFront publishes its
// metrics only there and an alarm reads metrics of its own region. It
// depends on the rung's stack, whose distribution ids it reads across
// regions (Fn::GetStackOutput), so it cannot be the Edge stack, which that
// rung's stack itself depends on.
type EdgeAlarms struct {
	awscdk.Stack
	Topic  *AlarmTopic
	Alarms []awscloudwatch.Alarm
}

func NewEdgeAlarms(scope constructs.Construct, id string, props EdgeAlarmsProps) *EdgeAlarms {
	stack := newEdgeRegionStack(scope, id, props.StackProps)
	a := &EdgeAlarms{Stack: stack}
	a.Topic = NewAlarmTopic(stack, "Alarms", AlarmTopicProps{Email: props.AlarmEmail})

	errorRate := props.ErrorRatePercent
	if errorRate == 0 {
		errorRate = DefaultCdn5xxErrorRatePercent
	}
	latency := props.OriginLatencyP99Ms
	if latency == 0 {
		latency = DefaultCdnOriginLatencyP99Ms
	}
	// CloudFront's metrics carry two dimensions, DistributionId and
	// Region=Global; a metric naming only the first (as Distribution's own
	// metric helpers do) matches no data and its alarm never fires.
	metric := func(d CdnSite, name, statistic string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:  s("AWS/CloudFront"),
			MetricName: s(name),
			DimensionsMap: &map[string]*string{
				"DistributionId": d.Distribution.DistributionId(),
				"Region":         s("Global"),
			},
			Statistic: s(statistic),
			Period:    awscdk.Duration_Minutes(n(5)),
		})
	}
	alarm := func(id, description string, m awscloudwatch.Metric, threshold float64) {
		al := awscloudwatch.NewAlarm(stack, s(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   s(description),
			Metric:             m,
			Threshold:          n(threshold),
			EvaluationPeriods:  n(2),
			DatapointsToAlarm:  n(2),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			// No requests means no datapoints: quiet, not broken.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		al.AddAlarmAction(a.Topic.Action)
		al.AddOkAction(a.Topic.Action)
		a.Alarms = append(a.Alarms, al)
	}
	for _, site := range props.Sites {
		alarm(site.Name+"5xxErrorRate",
			fmt.Sprintf("Ladder %s site: more than %g%% of viewer requests answered 5xx for 10 minutes (CloudFront, ALB or the app failing).", site.Name, errorRate),
			metric(site, "5xxErrorRate", "Average"), errorRate)
		// Time to first byte: the result stream sends its first event at
		// once, so long-lived /events streams do not inflate it.
		alarm(site.Name+"OriginLatency",
			fmt.Sprintf("Ladder %s site: p99 origin time-to-first-byte above %g ms for 10 minutes.", site.Name, latency),
			metric(site, "OriginLatency", "p99"), latency)
	}
	return a
}
