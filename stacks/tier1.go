package stacks

import (
	_ "embed"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/stacks/hostsetup"
)

// Tier1Props configure the single-box rung.
type Tier1Props struct {
	awscdk.StackProps
	// InstanceType is a Graviton type: the images and the AMI are arm64.
	InstanceType string
	// DataVolumeGiB sizes the volume holding PostgreSQL and Redis data.
	DataVolumeGiB int
	// AllowedCIDR may reach the vote (80) and result ports.
	AllowedCIDR string
	// DNS, when set, gets an A record tier1.<domain> for the box.
	DNS                 *DNSProps
	App                 VoteAppProps
	AlarmEmail          string
	LogRetention        awslogs.RetentionDays
	BackupRetentionDays int
}

// DNSProps name a Route53 zone by id, so synth never needs a lookup.
type DNSProps struct {
	DomainName   string
	HostedZoneID string
}

// VoteAppProps are what every rung tells the voting app.
type VoteAppProps struct {
	ServicesDir      string
	OptionA, OptionB string
}

const (
	tier1ResultPort = 8081
	dbName          = "votes"
	dbUser          = "ladder"
)

//go:embed tier1host/bootstrap.sh.tmpl
var tier1Bootstrap string

var tier1BootstrapTmpl = hostsetup.Parse("tier1-bootstrap", tier1Bootstrap)

// Tier1 is "100+ users": Route53 -> one EC2 box running the voting app with
// Redis and PostgreSQL beside it. One box, but no data lost with it: the
// database lives on its own encrypted volume, snapshotted daily and on delete.
type Tier1 struct {
	awscdk.Stack
	Instance   awsec2.Instance
	DataVolume awsec2.Volume
}

func NewTier1(scope constructs.Construct, id string, props Tier1Props) *Tier1 {
	stack := awscdk.NewStack(scope, s(id), &props.StackProps)
	t := &Tier1{Stack: stack}

	network := NewNetwork(stack, "Network", NetworkProps{MaxAzs: 1, FlowLogRetention: props.LogRetention})
	vpc := network.Vpc
	subnet := vpc.PublicSubnets()
	az := (*subnet)[0].AvailabilityZone()

	sg := awsec2.NewSecurityGroup(stack, s("BoxSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      s("Ladder Tier 1 box: vote and result from the allowed CIDR; no SSH (Session Manager instead)"),
		AllowAllOutbound: b(false),
	})
	peer := awsec2.Peer_Ipv4(s(props.AllowedCIDR))
	sg.AddIngressRule(peer, awsec2.Port_Tcp(n(80)), s("vote page"), nil)
	sg.AddIngressRule(peer, awsec2.Port_Tcp(n(tier1ResultPort)), s("result page"), nil)
	// HTTPS out reaches every AWS API, ECR and the Amazon Linux repositories;
	// DNS, NTP and instance metadata are link-local and not filtered.
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(n(443)), s("AWS APIs, ECR, OS packages"), nil)
	suppress(sg, nagReason{
		id:     "AwsSolutions-EC23",
		reason: "The box is the public web server of this rung: ports 80 and 8081 are open to allowedCidr, which a user narrows with -c allowedCidr=...; nothing else is open.",
	})

	// The data volume is the rung's state: retained as a snapshot when the
	// stack or the volume is deleted, and never replaced with the instance.
	t.DataVolume = awsec2.NewVolume(stack, s("DataVolume"), &awsec2.VolumeProps{
		AvailabilityZone: az,
		Size:             awscdk.Size_Gibibytes(n(float64(props.DataVolumeGiB))),
		VolumeType:       awsec2.EbsDeviceVolumeType_GP3,
		Encrypted:        b(true),
		RemovalPolicy:    awscdk.RemovalPolicy_SNAPSHOT,
	})
	awscdk.Tags_Of(t.DataVolume).Add(s("ladder:box"), stack.StackName(), nil)

	dbSecret := awssecretsmanager.NewSecret(stack, s("DatabasePassword"), &awssecretsmanager.SecretProps{
		Description: s(fmt.Sprintf("Password of the %s role of the Tier 1 box's PostgreSQL", dbUser)),
		// Alphanumeric keeps it safe in a URL, a SQL literal and a shell word.
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     n(32),
			ExcludePunctuation: b(true),
		},
		// Kept with the data volume's snapshot, so a restored volume can be
		// opened with the password it was last used with.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	suppress(dbSecret, nagReason{
		id:     "AwsSolutions-SMG4",
		reason: "The database listens on the box's loopback only, out of reach of a rotation Lambda. Rotate by putting a new value and running `systemctl restart ladder-secrets ladder-app.target` on the box (README, Tier 1).",
	})

	appLogs := awslogs.NewLogGroup(stack, s("AppLogs"), &awslogs.LogGroupProps{Retention: props.LogRetention, RemovalPolicy: awscdk.RemovalPolicy_RETAIN})
	hostLogs := awslogs.NewLogGroup(stack, s("HostLogs"), &awslogs.LogGroupProps{Retention: props.LogRetention, RemovalPolicy: awscdk.RemovalPolicy_RETAIN})

	images := NewVoteAppImages(stack, "Images", VoteAppImagesProps{ServicesDir: props.App.ServicesDir})

	role := awsiam.NewRole(stack, s("BoxRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(s("ec2.amazonaws.com"), nil),
		Description: s("Ladder Tier 1 box: pull the app images, read its DB password, attach its data volume, ship logs"),
	})
	images.GrantPull(role)
	dbSecret.GrantRead(role, nil)
	appLogs.GrantWrite(role)
	hostLogs.GrantWrite(role)
	volumeArn := stack.FormatArn(&awscdk.ArnComponents{Service: s("ec2"), Resource: s("volume"), ResourceName: t.DataVolume.VolumeId()})
	instanceArns := stack.FormatArn(&awscdk.ArnComponents{Service: s("ec2"), Resource: s("instance"), ResourceName: s("*")})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       s("AttachOwnDataVolume"),
		Actions:   ss("ec2:AttachVolume"),
		Resources: &[]*string{volumeArn, instanceArns},
		// Only this stack's box may take the volume, and only this volume.
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/ladder:box": stack.StackName()}},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       s("SeeDataVolumeState"),
		Actions:   ss("ec2:DescribeVolumes"),
		Resources: ss("*"),
	}))

	userData := tier1UserData(stack, props, t.DataVolume, dbSecret, images, appLogs, hostLogs)
	box := awsec2.NewInstance(stack, s("Box"), &awsec2.InstanceProps{
		Vpc:          vpc,
		VpcSubnets:   &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		InstanceType: awsec2.NewInstanceType(s(props.InstanceType)),
		MachineImage: awsec2.MachineImage_LatestAmazonLinux2023(&awsec2.AmazonLinux2023ImageSsmParameterProps{
			CpuType: awsec2.AmazonLinuxCpuType_ARM_64,
		}),
		SecurityGroup:         sg,
		Role:                  role,
		RequireImdsv2:         b(true),
		SsmSessionPermissions: b(true),
		DetailedMonitoring:    b(true),
		BlockDevices: &[]*awsec2.BlockDevice{{
			DeviceName: s("/dev/xvda"),
			Volume: awsec2.BlockDeviceVolume_Ebs(n(20), &awsec2.EbsDeviceOptions{
				VolumeType: awsec2.EbsDeviceVolumeType_GP3,
				Encrypted:  b(true),
			}),
		}},
		UserData: userData,
		// A user-data change (new images, new labels) is applied by a stop and
		// start, and the setup script runs on every boot, so nothing needs a
		// new instance.
		UserDataCausesReplacement: b(false),
	})
	t.Instance = box
	awscdk.Tags_Of(box).Add(s("ladder:box"), stack.StackName(), nil)
	suppress(box,
		nagReason{id: "AwsSolutions-EC29", reason: "The box holds no state: PostgreSQL and Redis data live on the separate DataVolume (snapshot on delete, daily AWS Backup). Termination protection would block the replacement an AMI update needs."},
	)
	suppress(role, nagReason{
		id:        "AwsSolutions-IAM4",
		reason:    "AmazonSSMManagedInstanceCore is the documented minimum for Session Manager, which replaces SSH on this box.",
		appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"},
	}, nagReason{
		id:     "AwsSolutions-IAM5",
		reason: "Wildcards here are the ones IAM requires: ecr:GetAuthorizationToken and ec2:DescribeVolumes take no resource; log streams are created per service at run time inside the two named log groups; AttachVolume names instances by the stack's tag, which a new box carries.",
	})

	eip := awsec2.NewCfnEIP(stack, s("PublicAddress"), &awsec2.CfnEIPProps{Domain: s("vpc"), InstanceId: box.InstanceId()})

	alarms := NewAlarmTopic(stack, "Alarms", AlarmTopicProps{Email: props.AlarmEmail})
	statusAlarm := func(id, metric, what string, action awscloudwatchactions.Ec2InstanceAction) {
		alarm := awscloudwatch.NewAlarm(stack, s(id), &awscloudwatch.AlarmProps{
			AlarmDescription: s(what),
			Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:     s("AWS/EC2"),
				MetricName:    s(metric),
				DimensionsMap: &map[string]*string{"InstanceId": box.InstanceId()},
				Statistic:     s("Maximum"),
				Period:        awscdk.Duration_Minutes(n(1)),
			}),
			Threshold:          n(1),
			EvaluationPeriods:  n(2),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			// A stopped box reports nothing: that is not a failure to act on.
			TreatMissingData: awscloudwatch.TreatMissingData_MISSING,
		})
		alarm.AddAlarmAction(awscloudwatchactions.NewEc2Action(action), alarms.Action)
		alarm.AddOkAction(alarms.Action)
	}
	statusAlarm("SystemStatusAlarm", "StatusCheckFailed_System", "Tier 1 box failed the system status check: EC2 recovers it onto healthy hardware (same id, same volume, same address).", awscloudwatchactions.Ec2InstanceAction_RECOVER)
	statusAlarm("InstanceStatusAlarm", "StatusCheckFailed_Instance", "Tier 1 box failed the instance status check: EC2 reboots it.", awscloudwatchactions.Ec2InstanceAction_REBOOT)

	NewBackup(stack, "Backup", BackupProps{RetentionDays: props.BackupRetentionDays, Resources: []*string{volumeArn}})

	host := eip.AttrPublicIp()
	if props.DNS != nil {
		zone := awsroute53.HostedZone_FromHostedZoneAttributes(stack, s("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: s(props.DNS.HostedZoneID),
			ZoneName:     s(props.DNS.DomainName),
		})
		name := "tier1." + props.DNS.DomainName
		awsroute53.NewARecord(stack, s("BoxRecord"), &awsroute53.ARecordProps{
			Zone:       zone,
			RecordName: s(name + "."),
			Target:     awsroute53.RecordTarget_FromIpAddresses(eip.AttrPublicIp()),
			Ttl:        awscdk.Duration_Minutes(n(5)),
		})
		host = s(name)
	}

	output := func(id, value, description string) {
		awscdk.NewCfnOutput(stack, s(id), &awscdk.CfnOutputProps{Value: s(value), Description: s(description)})
	}
	output("VoteUrl", "http://"+*host+"/", "The vote page")
	output("ResultUrl", fmt.Sprintf("http://%s:%d/", *host, tier1ResultPort), "The live result page")
	output("SessionCommand", "aws ssm start-session --target "+*box.InstanceId(), "A shell on the box, without SSH")
	output("DataVolumeId", *t.DataVolume.VolumeId(), "The volume with PostgreSQL and Redis data")
	return t
}

// tier1UserData reruns the box's setup on every boot.
func tier1UserData(stack awscdk.Stack, props Tier1Props, volume awsec2.Volume, secret awssecretsmanager.Secret, images *VoteAppImages, appLogs, hostLogs awslogs.LogGroup) awsec2.UserData {
	return hostsetup.UserData(tier1BootstrapScript(stack, props, volume, secret, images, appLogs, hostLogs))
}

func tier1BootstrapScript(stack awscdk.Stack, props Tier1Props, volume awsec2.Volume, secret awssecretsmanager.Secret, images *VoteAppImages, appLogs, hostLogs awslogs.LogGroup) string {
	const redisURL = "redis://127.0.0.1:6379/0"
	dbURL := fmt.Sprintf("postgres://%s@127.0.0.1:5432/%s?sslmode=disable", dbUser, dbName)
	labels := []string{"OPTION_A=" + props.App.OptionA, "OPTION_B=" + props.App.OptionB}
	withDB := []string{"DATABASE_URL=" + dbURL, "DATABASE_PASSWORD_FILE=/run/secrets/db-password"}
	region := *stack.Region()
	// The worker and result read the password; the internet-facing vote
	// service (queue mode) never needs it, so it does not get the file.
	dbPassword := []hostsetup.Mount{{Source: "/run/ladder/db-password", Target: "/run/secrets/db-password"}}
	data := map[string]any{
		"Region":                region,
		"VolumeID":              *volume.VolumeId(),
		"DBSecretARN":           *secret.SecretArn(),
		"DBName":                dbName,
		"DBUser":                dbUser,
		"ResultPort":            tier1ResultPort,
		"PostgresSharedBuffers": "256MB",
		"Secret":                hostsetup.SecretFile{Var: "pw", File: "db-password", AppUID: hostsetup.AppUID},
		"App": hostsetup.Apps{
			Region:      region,
			AppUID:      hostsetup.AppUID,
			AppLogGroup: *appLogs.LogGroupName(),
			Requires:    []string{"ladder-secrets.service"},
			After:       []string{"redis6.service", "postgresql.service"},
			Services: []hostsetup.Service{
				// The worker applies the schema: on one box there is no migration Lambda.
				{Name: "worker", Image: *images.Worker.ImageUri(), Env: append([]string{"PORT=8082", "REDIS_URL=" + redisURL, "DB_MIGRATE=true"}, withDB...), Mounts: dbPassword},
				{Name: "vote", Image: *images.Vote.ImageUri(), Env: append([]string{"PORT=80", "VOTE_MODE=queue", "REDIS_URL=" + redisURL}, labels...)},
				{Name: "result", Image: *images.Result.ImageUri(), Env: append(append([]string{fmt.Sprintf("PORT=%d", tier1ResultPort), "DB_MIGRATE=true"}, labels...), withDB...), Mounts: dbPassword},
			},
		},
		"Logs": hostsetup.HostLogs{
			LogGroup: *hostLogs.LogGroupName(),
			Files: []hostsetup.LogFile{
				{Path: "/var/log/cloud-init-output.log", Stream: "cloud-init"},
				{Path: "/var/lib/pgsql/data/log/postgresql-*.log", Stream: "postgresql"},
				{Path: "/var/log/redis6/redis6.log", Stream: "redis"},
			},
		},
	}
	return hostsetup.Render(tier1BootstrapTmpl, data)
}
