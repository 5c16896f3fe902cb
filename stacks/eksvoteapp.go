package stacks

import (
	"fmt"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/stacks/k8sapp"
)

// EksVoteAppProps configure the voting app on EKS as Tier 3 runs it and
// Tier 4 runs it in each region: the cluster, the Valkey queue, the log
// search domain, the images and the app's manifests. What differs between
// the rungs (where votes are stored, how traffic reaches the pods) comes in
// through Backend and Entry.
type EksVoteAppProps struct {
	RepoRoot string
	Vpc      awsec2.IVpc
	// Private subnets (with egress) hold nodes and functions; isolated
	// subnets the data stores.
	Private, Isolated *awsec2.SubnetSelection
	ClusterName       string

	EksAppSizing
	// DNS runs ExternalDNS for the zone (Tier 3's Ingress host names).
	DNS *DNSProps

	App          VoteAppProps
	LogRetention awslogs.RetentionDays
	AlarmAction  awscloudwatch.IAlarmAction
	// What prefixes descriptions and alarm texts ("Tier 3").
	What string

	// Backend fills the store's fields of the manifests' props (Aurora or
	// DynamoDB), given the shared ones.
	Backend func(app *k8sapp.AppProps)
	// Grant gives each service's pod role what its store needs (the Valkey
	// token is granted here).
	Grant func(vote, worker, result awsiam.IRole)
	// Entry fills how requests reach vote and result (Ingress host names and
	// certificate, or target groups of the rung's own load balancer, which
	// reach the pods through the cluster's security group).
	Entry func(app *k8sapp.AppProps, cluster *EksCluster)
	// ManifestsAfter are what the app's pods need to exist first besides the
	// platform add-ons (the schema migration, a load balancer).
	ManifestsAfter []constructs.IDependable
}

// EksAppSizing sizes the app's cluster, queue and log search, the same in
// every rung and region that runs the app on EKS.
type EksAppSizing struct {
	// NodeInstanceType (Graviton), MinNodes (>= 2) and MaxNodes size the
	// managed node group.
	NodeInstanceType   string
	MinNodes, MaxNodes int
	// PublicAccessCidrs may reach the cluster's public API endpoint.
	PublicAccessCidrs []string
	// AdminRoleArn, optional, is given cluster-admin by an access entry.
	AdminRoleArn string
	// Valkey (Redis protocol) between vote and worker.
	RedisNodeType string
	RedisReplicas int
	// OpenSearch for the pods' logs, kept LogSearchRetentionDays.
	OpenSearchInstanceType string
	LogSearchRetentionDays int
}

// EksVoteApp is what NewEksVoteApp made.
type EksVoteApp struct {
	Cache     *RedisCache
	LogSearch *LogSearch
	Eks       *EksCluster
	Images    *VoteAppImages
	// App is the manifests' props with defaults filled (namespace, names).
	App k8sapp.AppProps
	// Manifests are the app's objects as applied to the cluster.
	Manifests []constructs.IConstruct
}

// NewEksVoteApp adds the voting app on EKS to stack. Its constructs are made
// directly in the stack (not under a construct of their own), so a rung's
// logical ids read as Tier 3 always had them.
func NewEksVoteApp(stack awscdk.Stack, props EksVoteAppProps) *EksVoteApp {
	a := &EksVoteApp{}
	a.Cache = NewRedisCache(stack, "Cache", RedisCacheProps{
		Vpc:          props.Vpc,
		Subnets:      props.Isolated,
		NodeType:     props.RedisNodeType,
		Replicas:     props.RedisReplicas,
		LogRetention: props.LogRetention,
		What:         props.What,
	})
	a.LogSearch = NewLogSearch(stack, "LogSearch", LogSearchProps{
		Vpc:           props.Vpc,
		Subnets:       props.Isolated,
		InstanceType:  props.OpenSearchInstanceType,
		RetentionDays: props.LogSearchRetentionDays,
		RepoRoot:      props.RepoRoot,
		LogRetention:  props.LogRetention,
		What:          props.What,
	})

	// --- The cluster and its platform add-ons.
	a.Eks = NewEksCluster(stack, "Eks", EksClusterProps{
		Vpc:               props.Vpc,
		Subnets:           props.Private,
		ClusterName:       props.ClusterName,
		PublicAccessCidrs: props.PublicAccessCidrs,
		NodeInstanceType:  props.NodeInstanceType,
		MinNodes:          props.MinNodes,
		MaxNodes:          props.MaxNodes,
		LogRetention:      props.LogRetention,
		KubectlLayerZip:   filepath.Join(props.RepoRoot, kubectlLayerZip),
		AdminRoleArn:      props.AdminRoleArn,
		DNS:               props.DNS,
		What:              props.What,
	})
	cluster := a.Eks.Cluster

	// Pods run on the nodes, which carry the cluster security group: it is
	// the only group the data stores admit.
	podsSG := cluster.ClusterSecurityGroup()
	a.Cache.AllowFrom(podsSG)
	a.LogSearch.AllowFrom(podsSG)

	a.Images = NewVoteAppImages(stack, "Images", VoteAppImagesProps{ServicesDir: props.App.ServicesDir})
	a.Eks.AllowPull(a.Images)

	images := a.Images
	app := k8sapp.AppProps{
		Images: k8sapp.ServiceImages{
			Vote: *images.Vote.ImageUri(), Worker: *images.Worker.ImageUri(), Result: *images.Result.ImageUri(),
		},
		OptionA:            props.App.OptionA,
		OptionB:            props.App.OptionB,
		RedisHost:          *a.Cache.PrimaryHost,
		RedisAuthSecretArn: *a.Cache.AuthSecret.SecretArn(),
		Region:             *stack.Region(),
		OpenSearchEndpoint: *a.LogSearch.Endpoint,
		LogIndexPrefix:     a.LogSearch.IndexPrefix,
	}
	props.Backend(&app)
	app = app.WithDefaults()
	props.Entry(&app, a.Eks)
	a.App = app

	// --- Each service account gets exactly its credentials.
	sa := app.ServiceAccounts
	what := props.What
	vote := a.Eks.PodIdentityRole("Vote", app.Namespace, sa.Vote, what+" vote pods: read the Valkey AUTH token")
	worker := a.Eks.PodIdentityRole("Worker", app.Namespace, sa.Worker, what+" worker pods: "+workerRoleDuty(app))
	result := a.Eks.PodIdentityRole("Result", app.Namespace, sa.Result, what+" result pods: "+resultRoleDuty(app))
	props.Grant(vote, worker, result)
	a.Cache.AuthSecret.GrantRead(vote, nil)
	a.Cache.AuthSecret.GrantRead(worker, nil)
	fluentBit := a.Eks.PodIdentityRole("FluentBit", app.LoggingNamespace, sa.FluentBit, what+" Fluent Bit: write pod logs to the log search domain")
	a.LogSearch.GrantWrite(fluentBit)

	// --- The app: one manifest per object, namespaces first; everything
	// waits for the platform (load balancing, CSI driver, Pod Identity) and
	// for what the rung names, so no pod starts against a missing store.
	objects, err := k8sapp.Manifests(app)
	if err != nil {
		panic(fmt.Sprintf("%s manifests: %v", what, err))
	}
	namespaces := map[string]constructs.IConstruct{}
	var deps []constructs.IDependable
	for _, p := range a.Eks.Platform {
		deps = append(deps, p)
	}
	deps = append(deps, props.ManifestsAfter...)
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
		a.Manifests = append(a.Manifests, manifest)
	}

	a.Eks.RetainProviderLogs()
	a.alarms(stack, props)
	return a
}

// The pod roles' descriptions say what each may read, by store.
func workerRoleDuty(app k8sapp.AppProps) string {
	if app.Store == "dynamodb" {
		return "read the Valkey AUTH token, write votes to the DynamoDB table"
	}
	return "read the Aurora and Valkey credentials"
}

func resultRoleDuty(app k8sapp.AppProps) string {
	if app.Store == "dynamodb" {
		return "read the tallies from the DynamoDB table"
	}
	return "read the Aurora credentials"
}

// alarms: Valkey, OpenSearch and the nodes (the store's come with it).
func (a *EksVoteApp) alarms(stack awscdk.Stack, props EksVoteAppProps) {
	action := props.AlarmAction
	fiveMin := awscdk.Duration_Minutes(n(5))
	oneMin := awscdk.Duration_Minutes(n(1))
	alarm := func(id, what string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, periods float64, missing awscloudwatch.TreatMissingData) {
		a := awscloudwatch.NewAlarm(stack, s(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   s(props.What + ": " + what),
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
	rg := a.Cache.ReplicationGroup.Ref()
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
	domain := a.LogSearch.Domain
	alarm("LogSearchRedAlarm", "the log search cluster is red for 5 minutes: a primary shard is unassigned and Fluent Bit's writes fail.",
		domain.MetricClusterStatusRed(&awscloudwatch.MetricOptions{Statistic: s("Maximum"), Period: oneMin}), 1, ge, 5, awscloudwatch.TreatMissingData_MISSING)
	alarm("LogSearchYellowAlarm", "the log search cluster is yellow for 15 minutes: a replica shard is unassigned (no copy in the other AZ).",
		domain.MetricClusterStatusYellow(&awscloudwatch.MetricOptions{Statistic: s("Maximum"), Period: fiveMin}), 1, ge, 3, awscloudwatch.TreatMissingData_MISSING)
	alarm("LogSearchFreeStorageAlarm", "a log search node has less than 4 GiB free for 15 minutes: lower logSearchRetentionDays or grow the volumes.",
		domain.MetricFreeStorageSpace(&awscloudwatch.MetricOptions{Statistic: s("Minimum"), Period: fiveMin}), 4096, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 3, awscloudwatch.TreatMissingData_MISSING)

	// Nodes: the managed node group's Auto Scaling group is named by EKS,
	// so its name is read at deploy time (eks:DescribeNodegroup).
	ng := a.Eks.Nodegroup
	lookup := customresources.NewAwsCustomResource(stack, s("NodegroupAsgName"), &customresources.AwsCustomResourceProps{
		OnUpdate: &customresources.AwsSdkCall{
			Service:            s("EKS"),
			Action:             s("describeNodegroup"),
			Parameters:         map[string]any{"clusterName": a.Eks.Cluster.ClusterName(), "nodegroupName": ng.NodegroupName()},
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
