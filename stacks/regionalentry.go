package stacks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/stacks/k8sapp"
)

// RegionalEntryProps configure one region's way in for Tier 4.
type RegionalEntryProps struct {
	Vpc awsec2.IVpc
	// PodsSecurityGroup is the group of the pods the target groups reach
	// (the EKS cluster security group).
	PodsSecurityGroup awsec2.ISecurityGroup
	// DNS, when set, gives HTTPS on vote.<domain> and result.<domain> and
	// failover alias records for both names with this region's Failover
	// role. Without it the ALB speaks HTTP on its own name (vote on 80,
	// result on ResultPort) and no record is made.
	DNS      *DNSProps
	Failover awsroute53.Failover
	// SetIdentifier tells this region's records apart from the other's.
	SetIdentifier string
	// LogRetentionDays keeps the access logs; LogRetention the web ACL's
	// log of blocked requests.
	LogRetentionDays   int
	LogRetention       awslogs.RetentionDays
	DeletionProtection bool
	AlarmAction        awscloudwatch.IAlarmAction
	What               string
}

// RegionalEntry is an internet-facing ALB made by CloudFormation (so
// Route53 can name it, which it cannot for one the Load Balancer Controller
// makes at run time), its target groups for the vote and result pods (bound
// by TargetGroupBinding objects), a Route53 health check of the region, and
// with a domain the region's failover records.
type RegionalEntry struct {
	constructs.Construct
	LoadBalancer  elbv2.ApplicationLoadBalancer
	VoteTargets   elbv2.ApplicationTargetGroup
	ResultTargets elbv2.ApplicationTargetGroup
	// TargetGroupRevision changes whenever a change to the target groups
	// would make CloudFormation replace them (a new ARN): the bindings are
	// named with it, because the controller refuses to rebind one.
	TargetGroupRevision string
	// LogBucket holds the access logs (versioned: replicated by Tier 4).
	LogBucket awss3.Bucket
	// WebAcl filters every request before the load balancer routes it.
	WebAcl awswafv2.CfnWebACL
	// HealthCheck is healthy when vote answers /readyz from the internet and
	// result has a healthy target: it decides the failover.
	HealthCheck awsroute53.HealthCheck
	// VoteURL and ResultURL are this region's own addresses (the ALB's
	// name, or with a domain the names every region shares).
	VoteURL, ResultURL *string
}

// Health check timing: Route53 checks every 10 s from its checkers
// around the world and calls an endpoint unhealthy after 3 failures, so a
// dead region is noticed in about 30 s; records have a 60 s TTL (aliases
// take the ALB's), so clients move within about 1.5 minutes.
const (
	healthCheckInterval  = 10
	healthCheckFailures  = 3
	resultNoTargetMinute = 2
)

func NewRegionalEntry(scope constructs.Construct, id string, props RegionalEntryProps) *RegionalEntry {
	if props.DNS != nil && props.Failover == "" {
		panic("RegionalEntry: with DNS, Failover (PRIMARY or SECONDARY) is required")
	}
	c := constructs.NewConstruct(scope, s(id))
	e := &RegionalEntry{Construct: c}
	vpc := props.Vpc

	sg := awsec2.NewSecurityGroup(c, s("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      s(fmt.Sprintf("Ladder %s load balancer: the public web", props.What)),
		AllowAllOutbound: b(false),
	})
	suppress(sg, nagReason{
		id:     "AwsSolutions-EC23",
		reason: "The region's public web entry: voters anywhere and Route53's health checkers must reach it. Only the listener ports are open (80 and 443 with a domain, 80 and the result port without); the pods behind it admit only this group.",
	})
	e.LogBucket = NewLoadBalancerLogBucket(c, "Logs", props.LogRetentionDays)
	alb := elbv2.NewApplicationLoadBalancer(c, s("LoadBalancer"), &elbv2.ApplicationLoadBalancerProps{
		Vpc:                     vpc,
		VpcSubnets:              &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		InternetFacing:          b(true),
		SecurityGroup:           sg,
		DeletionProtection:      b(props.DeletionProtection),
		DropInvalidHeaderFields: b(true),
		// Above the result stream's 15 s heartbeat, so an idle stream is
		// not cut by the load balancer.
		IdleTimeout: awscdk.Duration_Seconds(n(60)),
	})
	alb.LogAccessLogs(e.LogBucket, s("alb"))
	e.LoadBalancer = alb

	// The same rules as Tier 2's CloudFront ACL, in front of the load
	// balancer: here the voters reach it directly.
	e.WebAcl = NewVoteWebAcl(c, VoteWebAclProps{
		Scope:         "REGIONAL",
		Description:   "Ladder voting app load balancer: /metrics hidden, a per-IP rate limit on vote POSTs, AWS managed rules",
		MetricName:    "LadderRegionalWebAcl",
		PostRateLimit: DefaultPostRateLimit,
		LogRetention:  props.LogRetention,
	})
	awswafv2.NewCfnWebACLAssociation(c, s("WebAclAssociation"), &awswafv2.CfnWebACLAssociationProps{
		ResourceArn: alb.LoadBalancerArn(),
		WebAclArn:   e.WebAcl.AttrArn(),
	})

	// IP targets: the pods themselves, registered by the Load Balancer
	// Controller from the TargetGroupBinding objects.
	targets := func(id string, port int32) elbv2.ApplicationTargetGroup {
		tg := elbv2.NewApplicationTargetGroup(c, s(id), &elbv2.ApplicationTargetGroupProps{
			Vpc:        vpc,
			Port:       n(float64(port)),
			Protocol:   elbv2.ApplicationProtocol_HTTP,
			TargetType: elbv2.TargetType_IP,
			// Liveness, as Tier 3's targets: the controller registers only
			// pods that pass readiness (/readyz), so a pod whose store is
			// gone leaves the group rather than turning it all unhealthy.
			HealthCheck: &elbv2.HealthCheck{
				Path:                    s(k8sapp.HealthCheckPath),
				Interval:                awscdk.Duration_Seconds(n(10)),
				Timeout:                 awscdk.Duration_Seconds(n(5)),
				HealthyThresholdCount:   n(2),
				UnhealthyThresholdCount: n(2),
				HealthyHttpCodes:        s("200"),
			},
			// Matches the pods' preStop sleep: in-flight requests finish.
			DeregistrationDelay: awscdk.Duration_Seconds(n(k8sapp.DeregistrationDelaySeconds)),
		})
		// The ALB reaches the pods on their port only.
		awsec2.NewCfnSecurityGroupIngress(c, s(id+"FromLoadBalancer"), &awsec2.CfnSecurityGroupIngressProps{
			GroupId:               props.PodsSecurityGroup.SecurityGroupId(),
			SourceSecurityGroupId: sg.SecurityGroupId(),
			IpProtocol:            s("tcp"),
			FromPort:              n(float64(port)),
			ToPort:                n(float64(port)),
			Description:           s(fmt.Sprintf("%s load balancer to the pods on %d", props.What, port)),
		})
		sg.AddEgressRule(props.PodsSecurityGroup, awsec2.Port_Tcp(n(float64(port))), s(fmt.Sprintf("to the pods on %d", port)), nil)
		return tg
	}
	e.VoteTargets = targets("VoteTargets", k8sapp.VotePort)
	e.ResultTargets = targets("ResultTargets", k8sapp.ResultPort)
	// What CloudFormation replaces a target group for: its logical id, VPC,
	// port, protocol and target type.
	identity := sha256.New()
	for _, tg := range []struct {
		c    constructs.IConstruct
		port int32
	}{{e.VoteTargets, k8sapp.VotePort}, {e.ResultTargets, k8sapp.ResultPort}} {
		fmt.Fprintf(identity, "%s|%s|%d|HTTP|ip\n", *tg.c.Node().Path(), *vpc.Node().Path(), tg.port)
	}
	e.TargetGroupRevision = hex.EncodeToString(identity.Sum(nil))[:8]
	forward := func(tg elbv2.ApplicationTargetGroup) elbv2.ListenerAction {
		return elbv2.ListenerAction_Forward(&[]elbv2.IApplicationTargetGroup{tg}, nil)
	}
	// /metrics is for Prometheus inside the cluster, not the internet.
	hideMetrics := func(l elbv2.ApplicationListener) {
		l.AddAction(s("NoMetrics"), &elbv2.AddApplicationActionProps{
			Priority:   n(1),
			Conditions: &[]elbv2.ListenerCondition{elbv2.ListenerCondition_PathPatterns(ss("/metrics", "/metrics/*"))},
			Action:     elbv2.ListenerAction_FixedResponse(n(404), &elbv2.FixedResponseOptions{ContentType: s("text/plain"), MessageBody: s("Not Found")}),
		})
	}
	open := func(port float64) {
		sg.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(n(port)), s(fmt.Sprintf("the public web on %v", port)), nil)
	}

	scheme, healthPort := "http", 80.0
	if props.DNS != nil {
		voteHost, resultHost := VoteHostname(props.DNS), ResultHostname(props.DNS)
		zone := awsroute53.HostedZone_FromHostedZoneAttributes(c, s("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: s(props.DNS.HostedZoneID),
			ZoneName:     s(props.DNS.DomainName),
		})
		// Each region validates its own certificate for the shared names.
		cert := awscertificatemanager.NewCertificate(c, s("Certificate"), &awscertificatemanager.CertificateProps{
			DomainName:              s(voteHost),
			SubjectAlternativeNames: ss(resultHost),
			Validation:              awscertificatemanager.CertificateValidation_FromDns(zone),
		})
		open(443)
		open(80)
		https := alb.AddListener(s("Https"), &elbv2.BaseApplicationListenerProps{
			Port:          n(443),
			Protocol:      elbv2.ApplicationProtocol_HTTPS,
			Certificates:  &[]elbv2.IListenerCertificate{elbv2.ListenerCertificate_FromCertificateManager(cert)},
			SslPolicy:     elbv2.SslPolicy_RECOMMENDED_TLS,
			Open:          b(false),
			DefaultAction: forward(e.VoteTargets),
		})
		hideMetrics(https)
		https.AddAction(s("Result"), &elbv2.AddApplicationActionProps{
			Priority:   n(10),
			Conditions: &[]elbv2.ListenerCondition{elbv2.ListenerCondition_HostHeaders(ss(resultHost))},
			Action:     forward(e.ResultTargets),
		})
		alb.AddRedirect(&elbv2.ApplicationLoadBalancerRedirectConfig{Open: b(false)})
		scheme, healthPort = "https", 443
		e.VoteURL, e.ResultURL = s("https://"+voteHost+"/"), s("https://"+resultHost+"/")
	} else {
		open(80)
		open(float64(k8sapp.ResultPort))
		http := alb.AddListener(s("Http"), &elbv2.BaseApplicationListenerProps{
			Port: n(80), Protocol: elbv2.ApplicationProtocol_HTTP, Open: b(false), DefaultAction: forward(e.VoteTargets),
		})
		hideMetrics(http)
		result := alb.AddListener(s("ResultHttp"), &elbv2.BaseApplicationListenerProps{
			Port: n(float64(k8sapp.ResultPort)), Protocol: elbv2.ApplicationProtocol_HTTP, Open: b(false), DefaultAction: forward(e.ResultTargets),
		})
		hideMetrics(result)
		e.VoteURL = awscdk.Fn_Join(s(""), &[]*string{s("http://"), alb.LoadBalancerDnsName(), s("/")})
		e.ResultURL = awscdk.Fn_Join(s(""), &[]*string{s("http://"), alb.LoadBalancerDnsName(), s(fmt.Sprintf(":%d/", k8sapp.ResultPort))})
	}
	e.health(props, scheme, healthPort)
	if props.DNS != nil {
		// Both names fail over together: vote and result of one region
		// share its queue and its view of the table.
		for _, r := range []struct{ id, host string }{{"VoteRecord", VoteHostname(props.DNS)}, {"ResultRecord", ResultHostname(props.DNS)}} {
			// L1: CDK's ARecord refuses a failover alias unless its target
			// evaluates health, and the Go binding cannot pass that option.
			awsroute53.NewCfnRecordSet(c, s(r.id), &awsroute53.CfnRecordSetProps{
				HostedZoneId: s(props.DNS.HostedZoneID),
				Name:         s(r.host + "."),
				Type:         s("A"),
				AliasTarget: &awsroute53.CfnRecordSet_AliasTargetProperty{
					DnsName:      awscdk.Fn_Join(s(""), &[]*string{s("dualstack."), alb.LoadBalancerDnsName()}),
					HostedZoneId: alb.LoadBalancerCanonicalHostedZoneId(),
					// Also follow the load balancer's own view of its targets.
					EvaluateTargetHealth: b(true),
				},
				Failover:      s(string(props.Failover)),
				SetIdentifier: s(props.SetIdentifier),
				HealthCheckId: e.HealthCheck.HealthCheckId(),
			})
		}
	}
	return e
}

// health is the region's Route53 health check: vote's /readyz over the
// internet (the ALB's default action is vote; Route53 sends the ALB's name
// as Host) AND an alarm that result has no healthy target. Vote in queue
// mode is ready when Valkey answers; result when the table does.
func (e *RegionalEntry) health(props RegionalEntryProps, scheme string, port float64) {
	c := e.Construct
	typ := awsroute53.HealthCheckType_HTTP
	if scheme == "https" {
		typ = awsroute53.HealthCheckType_HTTPS
	}
	vote := awsroute53.NewHealthCheck(c, s("VoteHealth"), &awsroute53.HealthCheckProps{
		Type:             typ,
		Fqdn:             e.LoadBalancer.LoadBalancerDnsName(),
		Port:             n(port),
		ResourcePath:     s("/readyz"),
		RequestInterval:  awscdk.Duration_Seconds(n(healthCheckInterval)),
		FailureThreshold: n(healthCheckFailures),
	})
	noResult := awscloudwatch.NewAlarm(c, s("ResultNoHealthyTargetAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription: s(props.What + ": the result service has no healthy target for 2 minutes (this region's Route53 health check fails with it)."),
		Metric: e.ResultTargets.Metrics().HealthyHostCount(&awscloudwatch.MetricOptions{
			Statistic: s("Minimum"), Period: awscdk.Duration_Minutes(n(1)),
		}),
		Threshold:          n(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  n(resultNoTargetMinute),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	})
	noResult.AddAlarmAction(props.AlarmAction)
	noResult.AddOkAction(props.AlarmAction)
	result := awsroute53.NewHealthCheck(c, s("ResultHealth"), &awsroute53.HealthCheckProps{
		Type: awsroute53.HealthCheckType_CLOUDWATCH_METRIC,
		AlarmIdentifier: &awsroute53.AlarmIdentifier{
			Name:   noResult.AlarmName(),
			Region: awscdk.Stack_Of(c).Region(),
		},
		InsufficientDataHealthStatus: awsroute53.InsufficientDataHealthStatusEnum_UNHEALTHY,
	})
	e.HealthCheck = awsroute53.NewHealthCheck(c, s("RegionHealth"), &awsroute53.HealthCheckProps{
		Type:              awsroute53.HealthCheckType_CALCULATED,
		ChildHealthChecks: &[]awsroute53.IHealthCheck{vote, result},
		HealthThreshold:   n(2),
	})
}
