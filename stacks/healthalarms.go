package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
)

// RegionHealth names one region's Route53 health check.
type RegionHealth struct {
	Region        string
	HealthCheckID *string
}

// HealthAlarmsProps watch the Route53 health checks of a rung's regions.
type HealthAlarmsProps struct {
	// StackProps' region is replaced by us-east-1; the account is kept.
	awscdk.StackProps
	Checks []RegionHealth
	// AlarmEmail is subscribed to this stack's alarm topic when set.
	AlarmEmail string
}

// HealthAlarms is a small stack in us-east-1 that says when Route53 calls a
// region unhealthy: Route53 publishes health check metrics only there, and
// the news that a region is down should not travel through that region's
// own alarm topic. It reads the health check ids across regions
// (Fn::GetStackOutput), so it is deployed after the stacks it watches.
type HealthAlarms struct {
	awscdk.Stack
	Topic  *AlarmTopic
	Alarms []awscloudwatch.Alarm
}

func NewHealthAlarms(scope constructs.Construct, id string, props HealthAlarmsProps) *HealthAlarms {
	stack := newEdgeRegionStack(scope, id, props.StackProps)
	h := &HealthAlarms{Stack: stack}
	h.Topic = NewAlarmTopic(stack, "Alarms", AlarmTopicProps{Email: props.AlarmEmail})
	for _, c := range props.Checks {
		// HealthCheckStatus is 1 while healthy, 0 while not, each minute.
		// Two unhealthy minutes is about when failover routing has
		// already answered with the other region: a person should look.
		// No data means the health check is gone: alarm too.
		al := awscloudwatch.NewAlarm(stack, s(sanitizeID(c.Region)+"UnhealthyAlarm"), &awscloudwatch.AlarmProps{
			AlarmDescription: s("Route53 calls " + c.Region + " unhealthy (vote /readyz from the internet, or no healthy result target) for 2 minutes: with a domain, its records have failed over. Tier 4 runbook in the README."),
			Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:     s("AWS/Route53"),
				MetricName:    s("HealthCheckStatus"),
				DimensionsMap: &map[string]*string{"HealthCheckId": c.HealthCheckID},
				Statistic:     s("Minimum"),
				Period:        awscdk.Duration_Minutes(n(1)),
			}),
			Threshold:          n(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
			EvaluationPeriods:  n(2),
			TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
		})
		al.AddAlarmAction(h.Topic.Action)
		al.AddOkAction(h.Topic.Action)
		h.Alarms = append(h.Alarms, al)
	}
	return h
}
