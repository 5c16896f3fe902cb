package stacks

import (
	_ "embed"
	"fmt"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/stacks/hostsetup"
)

// Tier2Props configure the rung without a single point of failure.
type Tier2Props struct {
	awscdk.StackProps
	// RepoRoot is the repository root (Lambda sources under lambda-src/).
	RepoRoot string
	// InstanceType is the app servers' Graviton type.
	InstanceType string
	// MinCapacity (at least 2, spread over the AZs) and MaxCapacity bound
	// the Auto Scaling group.
	MinCapacity, MaxCapacity int
	// NatGateways: 1 is cheaper; one per AZ keeps egress when an AZ fails.
	NatGateways int
	// DBInstanceClass is the Graviton class of the Aurora writer and reader.
	DBInstanceClass       string
	DBBackupRetentionDays int
	// DeletionProtection applies to the load balancer and the database.
	DeletionProtection bool
	// DNS, with Certificate, names the sites vote.<domain> and result.<domain>.
	DNS *DNSProps
	// WebAclArn and Certificate come from the rung's us-east-1 edge stack.
	WebAclArn   *string
	Certificate awscertificatemanager.ICertificate
	App         VoteAppProps
	AlarmEmail  string
	// LogRetention (CloudWatch Logs) and LogRetentionDays (S3 access logs)
	// are the same setting.
	LogRetention     awslogs.RetentionDays
	LogRetentionDays int
}

// Ports of the services on each app server, behind the load balancer.
const (
	tier2VotePort   = 8080
	tier2ResultPort = 8081
)

// targetRequestsPerMinute is what the request-count policy keeps each
// instance at on the vote target group. CPU tracking is the main signal;
// this one adds instances for a burst of cheap requests (page views) before
// CPU shows it. A t4g.small answers far more than 50 vote requests a second
// (group commit), so it is a early, cautious threshold.
const targetRequestsPerMinute = 3000

// secretRefreshMinutes is how often each app server rereads the Aurora
// secret to follow its rotation: new connections fail at most this long
// (plus a minute of jitter) after a rotation; open ones keep working.
const secretRefreshMinutes = 2

//go:embed tier2host/bootstrap.sh.tmpl
var tier2Bootstrap string

var tier2BootstrapTmpl = hostsetup.Parse("tier2-bootstrap", tier2Bootstrap)

// Tier2 is "10,000+ users": CloudFront (with WAF) -> an ALB -> an Auto
// Scaling group over two AZs -> Aurora PostgreSQL with a reader in another
// AZ. Every tier survives the loss of one instance or one AZ.
type Tier2 struct {
	awscdk.Stack
	Network      *Network
	Database     *Database
	Group        awsautoscaling.AutoScalingGroup
	LoadBalancer elbv2.ApplicationLoadBalancer
	OriginSecret awssecretsmanager.Secret
	Migration    *DBMigrate
	Cdn          *VoteAppCdn
	Canary       *Canary
	Alarms       *AlarmTopic
}

func NewTier2(scope constructs.Construct, id string, props Tier2Props) *Tier2 {
	sp := props.StackProps
	// The edge stack's web ACL and certificate live in us-east-1.
	sp.CrossRegionReferences = b(true)
	stack := awscdk.NewStack(scope, s(id), &sp)
	t := &Tier2{Stack: stack}
	if props.MinCapacity < 2 || props.MaxCapacity <= props.MinCapacity {
		panic(fmt.Sprintf("Tier 2 needs 2 <= MinCapacity < MaxCapacity, got %d and %d", props.MinCapacity, props.MaxCapacity))
	}

	t.Alarms = NewAlarmTopic(stack, "Alarms", AlarmTopicProps{Email: props.AlarmEmail})

	// --- Network: public (ALB, NAT), private (app, functions), isolated (DB).
	t.Network = NewNetwork(stack, "Network", NetworkProps{
		MaxAzs:           max(2, props.NatGateways),
		NatGateways:      props.NatGateways,
		PrivateSubnets:   true,
		IsolatedSubnets:  true,
		ServiceEndpoints: true,
		FlowLogRetention: props.LogRetention,
	})
	vpc := t.Network.Vpc
	private := &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}

	// --- Database: Aurora PostgreSQL, writer + reader in another AZ.
	// The schema is applied by a custom resource before any app server
	// starts (and, on a deploy adding a migration, before the rolling update).
	t.Database, t.Migration = NewVotesDatabase(stack, VotesDatabaseProps{
		RepoRoot:            props.RepoRoot,
		Vpc:                 vpc,
		InstanceClass:       props.DBInstanceClass,
		BackupRetentionDays: props.DBBackupRetentionDays,
		DeletionProtection:  props.DeletionProtection,
		AlarmAction:         t.Alarms.Action,
		LogRetention:        props.LogRetention,
		What:                "Tier 2",
	})
	db := t.Database

	// --- App servers.
	appLogs := awslogs.NewLogGroup(stack, s("AppLogs"), &awslogs.LogGroupProps{Retention: props.LogRetention, RemovalPolicy: awscdk.RemovalPolicy_RETAIN})
	hostLogs := awslogs.NewLogGroup(stack, s("HostLogs"), &awslogs.LogGroupProps{Retention: props.LogRetention, RemovalPolicy: awscdk.RemovalPolicy_RETAIN})
	images := NewVoteAppImages(stack, "Images", VoteAppImagesProps{ServicesDir: props.App.ServicesDir})

	appSG := awsec2.NewSecurityGroup(stack, s("AppSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      s("Ladder Tier 2 app servers: vote and result from the load balancer only; no SSH (Session Manager instead)"),
		AllowAllOutbound: b(false),
	})
	// HTTPS out: ECR and the other AWS APIs (through the VPC endpoints),
	// Amazon Linux packages and the RDS CA bundle (through NAT).
	appSG.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(n(443)), s("AWS APIs, ECR, OS packages, RDS CA bundle"), nil)
	db.Connections.AllowDefaultPortFrom(appSG, s("the app servers"))

	role := awsiam.NewRole(stack, s("AppRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(s("ec2.amazonaws.com"), nil),
		Description: s("Ladder Tier 2 app servers: pull the app images, read the Aurora secret, ship logs, signal CloudFormation, Session Manager"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(s("AmazonSSMManagedInstanceCore")),
		},
	})
	images.GrantPull(role)
	db.Secret.GrantRead(role, nil)
	appLogs.GrantWrite(role)
	hostLogs.GrantWrite(role)
	// cloudformation:SignalResource on this stack is granted by the group's
	// Signals below.

	// The template's user data is rendered at synth, so the script (which
	// names the group's logical id for cfn-signal) is added once the group
	// exists.
	userData := awsec2.NewMultipartUserData(nil)
	template := awsec2.NewLaunchTemplate(stack, s("AppLaunchTemplate"), &awsec2.LaunchTemplateProps{
		InstanceType: awsec2.NewInstanceType(s(props.InstanceType)),
		MachineImage: awsec2.MachineImage_LatestAmazonLinux2023(&awsec2.AmazonLinux2023ImageSsmParameterProps{
			CpuType: awsec2.AmazonLinuxCpuType_ARM_64,
		}),
		Role:          role,
		SecurityGroup: appSG,
		UserData:      userData,
		RequireImdsv2: b(true),
		// The containers share the host's network; a hop limit of 1 keeps
		// anything in a bridged container from the metadata service too.
		HttpPutResponseHopLimit: n(1),
		DetailedMonitoring:      b(true),
		BlockDevices: &[]*awsec2.BlockDevice{{
			DeviceName: s("/dev/xvda"),
			Volume: awsec2.BlockDeviceVolume_Ebs(n(20), &awsec2.EbsDeviceOptions{
				VolumeType:          awsec2.EbsDeviceVolumeType_GP3,
				Encrypted:           b(true),
				DeleteOnTermination: b(true),
			}),
		}},
	})

	signalTimeout := awscdk.Duration_Minutes(n(15))
	group := awsautoscaling.NewAutoScalingGroup(stack, s("AppGroup"), &awsautoscaling.AutoScalingGroupProps{
		Vpc:            vpc,
		VpcSubnets:     private,
		LaunchTemplate: template,
		MinCapacity:    n(float64(props.MinCapacity)),
		MaxCapacity:    n(float64(props.MaxCapacity)),
		// Replace an instance the load balancer finds unhealthy, but give a
		// new one time to install Docker and pull the images first.
		HealthChecks: awsautoscaling.HealthChecks_WithAdditionalChecks(&awsautoscaling.AdditionalHealthChecksOptions{
			AdditionalTypes: &[]awsautoscaling.AdditionalHealthCheckType{awsautoscaling.AdditionalHealthCheckType_ELB},
			GracePeriod:     awscdk.Duration_Minutes(n(5)),
		}),
		DefaultInstanceWarmup: awscdk.Duration_Minutes(n(3)),
		// Creation waits for min capacity instances to report ready.
		Signals: awsautoscaling.Signals_WaitForMinCapacity(&awsautoscaling.SignalsOptions{Timeout: signalTimeout}),
		// A new launch template version (new images, new labels, a new AMI)
		// replaces instances one at a time, each new one ready (cfn-signal)
		// before an old one goes, never fewer than MinCapacity in service.
		UpdatePolicy: awsautoscaling.UpdatePolicy_RollingUpdate(&awsautoscaling.RollingUpdateOptions{
			MaxBatchSize:          n(1),
			MinInstancesInService: n(float64(props.MinCapacity)),
			WaitOnResourceSignals: b(true),
			PauseTime:             signalTimeout,
		}),
		GroupMetrics: &[]awsautoscaling.GroupMetrics{awsautoscaling.GroupMetrics_All()},
	})
	t.Group = group
	// Instances start only once the writer and reader exist (the cluster's
	// endpoint exists before its instances do) and the schema is applied.
	group.Node().AddDependency(db.Cluster, t.Migration.Resource)
	groupLogicalID := stack.GetLogicalId(group.Node().DefaultChild().(awsautoscaling.CfnAutoScalingGroup))

	hostsetup.AddSetup(userData, tier2Script(stack, props, groupLogicalID, db, images, appLogs, hostLogs))

	// --- Load balancer: only CloudFront, only with the origin secret.
	t.OriginSecret = awssecretsmanager.NewSecret(stack, s("OriginSecret"), &awssecretsmanager.SecretProps{
		Description: s("Value of the " + OriginVerifyHeader + " header CloudFront adds and the load balancer requires"),
		// Alphanumeric: a valid header value and ALB condition value.
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     n(40),
			ExcludePunctuation: b(true),
		},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	suppress(t.OriginSecret, nagReason{
		id:     "AwsSolutions-SMG4",
		reason: "CloudFormation copies this value into the CloudFront origin and the listener rule at deploy time, so a rotation Lambda would lock CloudFront out until the next deploy. It is the second lock behind the ALB security group that admits only CloudFront's origin-facing addresses; README (Tier 2) says how to change it.",
	})

	albSG := awsec2.NewSecurityGroup(stack, s("LoadBalancerSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      s("Ladder Tier 2 load balancer: HTTP from the CloudFront origin-facing addresses only"),
		AllowAllOutbound: b(false),
	})
	albSG.AddIngressRule(awsec2.Peer_PrefixList(cloudFrontOriginFacingPrefixList(stack)), awsec2.Port_Tcp(n(80)), s("CloudFront origin-facing servers"), nil)

	logBucket := NewLoadBalancerLogBucket(stack, "LoadBalancerLogs", props.LogRetentionDays)

	alb := elbv2.NewApplicationLoadBalancer(stack, s("LoadBalancer"), &elbv2.ApplicationLoadBalancerProps{
		Vpc:                     vpc,
		VpcSubnets:              &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		InternetFacing:          b(true),
		SecurityGroup:           albSG,
		DeletionProtection:      b(props.DeletionProtection),
		DropInvalidHeaderFields: b(true),
		// Above the result stream's 15 s heartbeat and CloudFront's 30 s
		// keep-alive, so neither an idle stream nor a pooled connection is
		// cut by the load balancer first.
		IdleTimeout: awscdk.Duration_Seconds(n(60)),
	})
	alb.LogAccessLogs(logBucket, s("alb"))
	t.LoadBalancer = alb

	targets := func(id string, port float64) elbv2.ApplicationTargetGroup {
		return elbv2.NewApplicationTargetGroup(stack, s(id), &elbv2.ApplicationTargetGroupProps{
			Vpc:        vpc,
			Port:       n(port),
			Protocol:   elbv2.ApplicationProtocol_HTTP,
			TargetType: elbv2.TargetType_INSTANCE,
			Targets:    &[]elbv2.IApplicationLoadBalancerTarget{group},
			HealthCheck: &elbv2.HealthCheck{
				Path:                    s("/healthz"),
				Interval:                awscdk.Duration_Seconds(n(15)),
				Timeout:                 awscdk.Duration_Seconds(n(5)),
				HealthyThresholdCount:   n(2),
				UnhealthyThresholdCount: n(3),
				HealthyHttpCodes:        s("200"),
			},
			// The services finish in-flight requests on SIGTERM within 20 s.
			DeregistrationDelay: awscdk.Duration_Seconds(n(30)),
		})
	}
	voteTargets := targets("VoteTargets", tier2VotePort)
	resultTargets := targets("ResultTargets", tier2ResultPort)

	// CloudFront speaks HTTP to the ALB inside AWS's network; viewers speak
	// HTTPS to CloudFront. Anything without the origin secret gets a 403.
	listener := alb.AddListener(s("Http"), &elbv2.BaseApplicationListenerProps{
		Port:          n(80),
		Protocol:      elbv2.ApplicationProtocol_HTTP,
		Open:          b(false),
		DefaultAction: elbv2.ListenerAction_FixedResponse(n(403), &elbv2.FixedResponseOptions{ContentType: s("text/plain"), MessageBody: s("Forbidden")}),
	})
	originSecret := t.OriginSecret.SecretValue().UnsafeUnwrap()
	for i, site := range []struct {
		id, name string
		targets  elbv2.ApplicationTargetGroup
	}{{"Vote", VoteSite, voteTargets}, {"Result", ResultSite, resultTargets}} {
		listener.AddAction(s(site.id), &elbv2.AddApplicationActionProps{
			Priority: n(float64(10 * (i + 1))),
			Conditions: &[]elbv2.ListenerCondition{
				elbv2.ListenerCondition_HttpHeader(s(OriginVerifyHeader), &[]*string{originSecret}),
				elbv2.ListenerCondition_HttpHeader(s(SiteHeader), ss(site.name)),
			},
			Action: elbv2.ListenerAction_Forward(&[]elbv2.IApplicationTargetGroup{site.targets}, nil),
		})
	}

	// --- Scaling: CPU, and requests per vote target.
	group.ScaleOnCpuUtilization(s("Cpu"), &awsautoscaling.CpuUtilizationScalingProps{
		TargetUtilizationPercent: n(60),
	})
	awsautoscaling.NewTargetTrackingScalingPolicy(stack, s("VoteRequestsPerTarget"), &awsautoscaling.TargetTrackingScalingPolicyProps{
		AutoScalingGroup: group,
		PredefinedMetric: awsautoscaling.PredefinedMetric_ALB_REQUEST_COUNT_PER_TARGET,
		ResourceLabel:    awscdk.Fn_Join(s("/"), &[]*string{alb.LoadBalancerFullName(), voteTargets.TargetGroupFullName()}),
		TargetValue:      n(targetRequestsPerMinute),
	})

	suppress(group, nagReason{
		id:     "AwsSolutions-AS3",
		reason: "Scaling activity is in the group's activity history and on the dashboard; what matters to an operator (fewer instances in service than the minimum, unhealthy targets) raises an alarm to the rung's topic.",
	})
	suppress(role, nagReason{
		id:        "AwsSolutions-IAM4",
		reason:    "AmazonSSMManagedInstanceCore is the documented minimum for Session Manager, which replaces SSH on the app servers.",
		appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"},
	}, nagReason{
		id:     "AwsSolutions-IAM5",
		reason: "Wildcards here are the ones IAM requires: ecr:GetAuthorizationToken takes no resource; log streams are created per service and instance at run time inside the two named log groups.",
	})

	// --- CDN: one CloudFront distribution per site, static files from S3.
	t.Cdn = NewVoteAppCdn(stack, "Cdn", VoteAppCdnProps{
		LoadBalancer:     alb,
		OriginSecret:     t.OriginSecret,
		WebAclArn:        props.WebAclArn,
		Certificate:      props.Certificate,
		DNS:              props.DNS,
		VoteStaticDir:    filepath.Join(props.App.ServicesDir, "internal/votepage/static"),
		ResultStaticDir:  filepath.Join(props.App.ServicesDir, "internal/resultpage/static"),
		LogRetentionDays: float64(props.LogRetentionDays),
	})
	// A page naming a new asset hash is served only once the asset is in
	// the bucket: instances of a new version start after the upload.
	for _, d := range t.Cdn.StaticDeployments {
		group.Node().AddDependency(d)
	}

	// --- Canary: a vote through CloudFront, WAF, the ALB and an app server,
	// checked on the result side, every 5 minutes.
	t.Canary = NewCanary(stack, "Canary", CanaryProps{
		RepoRoot:     props.RepoRoot,
		VoteURL:      t.Cdn.VoteURL,
		ResultURL:    t.Cdn.ResultURL,
		Every:        awscdk.Duration_Minutes(n(5)),
		Namespace:    "Ladder/Canary",
		AlarmAction:  t.Alarms.Action,
		LogRetention: props.LogRetention,
	})

	t.observability(props, voteTargets, resultTargets)

	output := func(id string, value *string, description string) {
		awscdk.NewCfnOutput(stack, s(id), &awscdk.CfnOutputProps{Value: value, Description: s(description)})
	}
	output("VoteUrl", t.Cdn.VoteURL, "The vote page")
	output("ResultUrl", t.Cdn.ResultURL, "The live result page")
	output("AppGroupName", group.AutoScalingGroupName(), "The app servers' Auto Scaling group (aws ssm start-session --target <instance id> for a shell)")
	output("DatabaseSecretArn", db.Secret.SecretArn(), "The Aurora owner's credentials (rotated every 30 days)")
	return t
}

// cloudFrontOriginFacingPrefixList is the id of the AWS-managed prefix list
// of CloudFront's origin-facing servers. The id differs per region, so it is
// read at deploy time (ec2:DescribeManagedPrefixLists by its fixed name);
// synth stays offline.
func cloudFrontOriginFacingPrefixList(stack awscdk.Stack) *string {
	call := &customresources.AwsSdkCall{
		Service: s("EC2"),
		Action:  s("describeManagedPrefixLists"),
		Parameters: map[string]any{
			"Filters": []map[string]any{{"Name": "prefix-list-name", "Values": []string{"com.amazonaws.global.cloudfront.origin-facing"}}},
		},
		PhysicalResourceId: customresources.PhysicalResourceId_Of(s("com.amazonaws.global.cloudfront.origin-facing")),
		OutputPaths:        ss("PrefixLists.0.PrefixListId"),
	}
	lookup := customresources.NewAwsCustomResource(stack, s("CloudFrontPrefixList"), &customresources.AwsCustomResourceProps{
		OnUpdate: call,
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions:   ss("ec2:DescribeManagedPrefixLists"),
				Resources: ss("*"),
			}),
		}),
		InstallLatestAwsSdk: b(false),
	})
	suppress(lookup, nagReason{
		id:        "AwsSolutions-IAM5",
		reason:    "ec2:DescribeManagedPrefixLists supports no resource-level permissions: IAM accepts only \"*\" for it. It is the only action this function may call.",
		appliesTo: []string{"Resource::*"},
	})
	// CDK makes the function behind every AwsCustomResource of a stack
	// once, at the stack's root.
	for _, child := range *stack.Node().Children() {
		if *child.Node().Id() == "AWS679f53fac002430cb0da5b7982bd2287" {
			suppress(child, nagReason{
				id:        "AwsSolutions-IAM4",
				reason:    "CDK's AwsCustomResource function writes its own logs with AWSLambdaBasicExecutionRole (CreateLogGroup/Stream, PutLogEvents); what it may call is the separate, single-action policy above.",
				appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
			})
		}
	}
	return lookup.GetResponseField(s("PrefixLists.0.PrefixListId"))
}

// tier2Script renders the app servers' setup.
func tier2Script(stack awscdk.Stack, props Tier2Props, groupLogicalID *string, db *Database, images *VoteAppImages, appLogs, hostLogs awslogs.LogGroup) string {
	region := *stack.Region()
	const (
		secretFile = "/run/secrets/db-secret.json"
		caFile     = "/run/secrets/rds-ca.pem"
	)
	// The secret supplies user, password, writer host and database; the URLs
	// add TLS with certificate verification against the RDS CAs.
	tls := "?sslmode=verify-full&sslrootcert=" + caFile
	writer := fmt.Sprintf("postgres://%s:%d/%s%s", *db.Cluster.ClusterEndpoint().Hostname(), postgresPort, dbName, tls)
	reader := fmt.Sprintf("postgres://%s:%d/%s%s", *db.Cluster.ClusterReadEndpoint().Hostname(), postgresPort, dbName, tls)
	labels := []string{"OPTION_A=" + props.App.OptionA, "OPTION_B=" + props.App.OptionB}
	withDB := []string{"DATABASE_SECRET_FILE=" + secretFile, "DATABASE_URL=" + writer}
	// Both services talk to Aurora: each gets the secret and the CA bundle.
	dbMounts := []hostsetup.Mount{
		{Source: "/run/ladder/db-secret.json", Target: secretFile},
		{Source: "/etc/ladder/rds-ca.pem", Target: caFile},
	}
	data := map[string]any{
		"Region":         region,
		"StackName":      *stack.StackName(),
		"GroupLogicalID": *groupLogicalID,
		"DBSecretARN":    *db.Secret.SecretArn(),
		"RefreshMinutes": secretRefreshMinutes,
		"VotePort":       tier2VotePort,
		"ResultPort":     tier2ResultPort,
		"ReadyPorts":     []int{tier2VotePort, tier2ResultPort},
		"Secret":         hostsetup.SecretFile{Var: "secret", File: "db-secret.json", AppUID: hostsetup.AppUID},
		"App": hostsetup.Apps{
			Region:      region,
			AppUID:      hostsetup.AppUID,
			AppLogGroup: *appLogs.LogGroupName(),
			Requires:    []string{"ladder-secrets.service"},
			Services: []hostsetup.Service{
				// Direct mode: no Redis at this rung; each vote is committed to
				// Aurora (group commit) before the page answers.
				{Name: "vote", Image: *images.Vote.ImageUri(), Env: append(append([]string{fmt.Sprintf("PORT=%d", tier2VotePort), "VOTE_MODE=direct"}, labels...), withDB...), Mounts: dbMounts},
				// Tallies are read from the reader endpoint (replica lag is
				// alarmed); LISTEN/NOTIFY stays on the writer.
				{Name: "result", Image: *images.Result.ImageUri(), Env: append(append(append([]string{fmt.Sprintf("PORT=%d", tier2ResultPort)}, labels...), withDB...), "DATABASE_READ_URL="+reader), Mounts: dbMounts},
			},
		},
		"Logs": hostsetup.HostLogs{
			LogGroup: *hostLogs.LogGroupName(),
			Files:    []hostsetup.LogFile{{Path: "/var/log/cloud-init-output.log", Stream: "cloud-init"}},
		},
	}
	return hostsetup.Render(tier2BootstrapTmpl, data)
}

// observability: alarms on what a user would notice, and a dashboard.
func (t *Tier2) observability(props Tier2Props, voteTargets, resultTargets elbv2.ApplicationTargetGroup) {
	stack, alb, action := t.Stack, t.LoadBalancer, t.Alarms.Action
	fiveMin := awscdk.Duration_Minutes(n(5))
	oneMin := awscdk.Duration_Minutes(n(1))
	var alarms []interfacesawscloudwatch.IAlarmRef
	alarm := func(id, what string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, periods float64) {
		a := awscloudwatch.NewAlarm(stack, s(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   s("Tier 2: " + what),
			Metric:             metric,
			Threshold:          n(threshold),
			ComparisonOperator: op,
			EvaluationPeriods:  n(periods),
			// No requests means no errors: not a reason to page anyone.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		alarms = append(alarms, a)
	}
	elb5xx := alb.Metrics().HttpCodeElb(elbv2.HttpCodeElb_ELB_5XX_COUNT, &awscloudwatch.MetricOptions{Statistic: s("Sum"), Period: fiveMin})
	alarm("LoadBalancer5xxAlarm", "the load balancer answered more than 10 5xx in 5 minutes twice in a row (no healthy target, or targets failing).",
		elb5xx, 10, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 2)
	for _, tg := range []struct {
		id, what string
		tg       elbv2.ApplicationTargetGroup
	}{{"Vote", "vote", voteTargets}, {"Result", "result", resultTargets}} {
		m := tg.tg.Metrics()
		alarm(tg.id+"Target5xxAlarm", fmt.Sprintf("the %s service answered more than 10 5xx in 5 minutes twice in a row.", tg.what),
			m.HttpCodeTarget(elbv2.HttpCodeTarget_TARGET_5XX_COUNT, &awscloudwatch.MetricOptions{Statistic: s("Sum"), Period: fiveMin}),
			10, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 2)
		alarm(tg.id+"LatencyAlarm", fmt.Sprintf("the %s service's p99 response time is above 1 s for 15 minutes.", tg.what),
			m.TargetResponseTime(&awscloudwatch.MetricOptions{Statistic: s("p99"), Period: fiveMin}),
			1, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 3)
		alarm(tg.id+"UnhealthyHostsAlarm", fmt.Sprintf("a %s target has failed its health check for 5 minutes (the group replaces it; if this persists, new instances fail too).", tg.what),
			m.UnhealthyHostCount(&awscloudwatch.MetricOptions{Statistic: s("Maximum"), Period: oneMin}),
			1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 5)
	}
	inService := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     s("AWS/AutoScaling"),
		MetricName:    s("GroupInServiceInstances"),
		DimensionsMap: &map[string]*string{"AutoScalingGroupName": t.Group.AutoScalingGroupName()},
		Statistic:     s("Minimum"),
		Period:        oneMin,
	})
	alarm("InServiceAlarm", fmt.Sprintf("fewer than %d app servers in service for 10 minutes: instances fail to launch or to become ready.", props.MinCapacity),
		inService, float64(props.MinCapacity), awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 10)
	for _, a := range t.Database.Alarms {
		alarms = append(alarms, a)
	}
	alarms = append(alarms, t.Canary.FailureAlarm, t.Canary.LatencyAlarm)

	cluster := t.Database.Cluster
	dash := awscloudwatch.NewDashboard(stack, s("Dashboard"), &awscloudwatch.DashboardProps{
		DefaultInterval: awscdk.Duration_Hours(n(3)),
	})
	graph := func(title string, left []awscloudwatch.IMetric, right ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		gp := &awscloudwatch.GraphWidgetProps{Title: s(title), Left: &left, Width: n(8), Height: n(6)}
		if len(right) > 0 {
			gp.Right = &right
		}
		return awscloudwatch.NewGraphWidget(gp)
	}
	vm, rm := voteTargets.Metrics(), resultTargets.Metrics()
	dash.AddWidgets(
		graph("Requests (per minute)", []awscloudwatch.IMetric{
			vm.RequestCount(&awscloudwatch.MetricOptions{Label: s("vote"), Period: oneMin}),
			rm.RequestCount(&awscloudwatch.MetricOptions{Label: s("result"), Period: oneMin}),
		}),
		graph("5xx (per minute)", []awscloudwatch.IMetric{
			alb.Metrics().HttpCodeElb(elbv2.HttpCodeElb_ELB_5XX_COUNT, &awscloudwatch.MetricOptions{Label: s("load balancer"), Period: oneMin}),
			vm.HttpCodeTarget(elbv2.HttpCodeTarget_TARGET_5XX_COUNT, &awscloudwatch.MetricOptions{Label: s("vote"), Period: oneMin}),
			rm.HttpCodeTarget(elbv2.HttpCodeTarget_TARGET_5XX_COUNT, &awscloudwatch.MetricOptions{Label: s("result"), Period: oneMin}),
		}),
		graph("Response time p99 (s)", []awscloudwatch.IMetric{
			vm.TargetResponseTime(&awscloudwatch.MetricOptions{Label: s("vote"), Statistic: s("p99"), Period: oneMin}),
			rm.TargetResponseTime(&awscloudwatch.MetricOptions{Label: s("result"), Statistic: s("p99"), Period: oneMin}),
		}),
	)
	dash.AddWidgets(
		graph("App servers", []awscloudwatch.IMetric{
			inService.With(&awscloudwatch.MetricOptions{Label: s("in service"), Statistic: s("Average")}),
			vm.HealthyHostCount(&awscloudwatch.MetricOptions{Label: s("healthy vote targets")}),
			vm.UnhealthyHostCount(&awscloudwatch.MetricOptions{Label: s("unhealthy vote targets")}),
			rm.UnhealthyHostCount(&awscloudwatch.MetricOptions{Label: s("unhealthy result targets")}),
		}, awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     s("AWS/EC2"),
			MetricName:    s("CPUUtilization"),
			DimensionsMap: &map[string]*string{"AutoScalingGroupName": t.Group.AutoScalingGroupName()},
			Label:         s("CPU % (average)"),
			Period:        oneMin,
		})),
		graph("Aurora", []awscloudwatch.IMetric{
			cluster.MetricCPUUtilization(&awscloudwatch.MetricOptions{Label: s("CPU % (max)"), Statistic: s("Maximum"), Period: oneMin}),
		}, cluster.MetricDatabaseConnections(&awscloudwatch.MetricOptions{Label: s("connections"), Period: oneMin})),
		graph("Aurora memory and lag", []awscloudwatch.IMetric{
			cluster.MetricFreeableMemory(&awscloudwatch.MetricOptions{Label: s("freeable memory (min)"), Statistic: s("Minimum"), Period: oneMin}),
		}, cluster.Metric(s("AuroraReplicaLagMaximum"), &awscloudwatch.MetricOptions{Label: s("replica lag ms (max)"), Statistic: s("Maximum"), Period: oneMin})),
	)
	dash.AddWidgets(
		graph("Canary: a vote end to end", []awscloudwatch.IMetric{
			t.Canary.Success.With(&awscloudwatch.MetricOptions{Label: s("success (1 = ok)")}),
		}, t.Canary.Latency.With(&awscloudwatch.MetricOptions{Label: s("vote to result (ms)")})),
	)
	dash.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title:  s("Alarms"),
		Alarms: &alarms,
		Width:  n(24),
	}))
}
