package stacks

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsopensearchservice"
	"github.com/aws/constructs-go/constructs/v10"
)

// LogSearchProps size and place the log search domain.
type LogSearchProps struct {
	Vpc awsec2.IVpc
	// Subnets hold the domain's nodes (one subnet in each of the first two
	// AZs of the selection) and the lifecycle function: private or isolated.
	// The function calls nothing but the domain, so isolated subnets do.
	Subnets *awsec2.SubnetSelection
	// InstanceType of the data nodes; empty means m7g.large.search
	// (Graviton, the smallest general-purpose type that supports everything
	// below; the t-types lack some of it and are not for production).
	InstanceType string
	// DataNodes is a multiple of 2 (one half in each AZ); 0 means 2.
	DataNodes int
	// MasterNodes are dedicated cluster managers of InstanceType: 0 (none,
	// the default) or 3.
	MasterNodes int
	// VolumeGiB is each data node's gp3 volume; 0 means 20.
	VolumeGiB int
	// RetentionDays is how long an index is kept after it was created
	// (the index lifecycle policy); 0 means 14.
	RetentionDays int
	// IndexPrefix names the log indices (<prefix>-YYYY.MM.DD); empty means
	// "ladder-logs".
	IndexPrefix string
	// AdminRoleArns are IAM roles of people who may use the domain
	// (OpenSearch Dashboards, the REST API) with full rights; see LogSearch.
	AdminRoleArns []string
	// DomainName is the domain's name: 3-28 lowercase letters, digits and
	// hyphens, starting with a letter; empty means one derived from the
	// construct's path. See NewLogSearch for why it is fixed.
	DomainName string
	// RepoRoot is the repository's absolute path (the function's source).
	RepoRoot string
	// LogRetention is how long the domain's and the function's logs are kept.
	LogRetention awslogs.RetentionDays
	// What names the rung in descriptions ("Tier 3"); empty means "Ladder".
	What string
}

// LogSearch is an OpenSearch Service domain for the pods' logs: in the VPC
// across two AZs (zone awareness, each index replicated to the other AZ),
// encrypted at rest with its own key and between nodes, HTTPS only with
// TLS 1.2+, fine-grained access control, retained when the stack goes.
//
// Who may do what:
//   - The domain's access policy allows only named IAM roles: the
//     lifecycle function's, those given to GrantWrite, and AdminRoleArns.
//     Every request must be SigV4-signed by one of them.
//   - Fine-grained access control's master user is the lifecycle
//     function's role (an IAM role, so no password exists anywhere). The
//     function (a custom resource, run when the stack is created and when
//     its properties change: retention, writers, admins) maps the writer
//     roles to "<prefix>-writer" (create and write <prefix>-* indices, no
//     reads) and AdminRoleArns to all_access, applies the index lifecycle
//     policy (delete after RetentionDays) and the index template.
//   - A person gets access by adding their role's ARN to AdminRoleArns and
//     deploying, then signing requests with that role from inside the VPC
//     (for example through a port forward from the cluster).
type LogSearch struct {
	constructs.Construct
	Domain awsopensearchservice.Domain
	// Endpoint is the domain's host name (no scheme).
	Endpoint *string
	// IndexPrefix: Fluent Bit writes to <IndexPrefix>-YYYY.MM.DD.
	IndexPrefix   string
	SecurityGroup awsec2.SecurityGroup
	Key           awskms.Key
	// Lifecycle is the custom resource applying the role mappings, the
	// index lifecycle policy and the index template; Function runs it.
	Lifecycle awscdk.CustomResource
	Function  awslambda.Function
	// MasterRole is the fine-grained access control master user (the
	// function's role).
	MasterRole awsiam.Role
	// PolicyName is the index lifecycle policy's id.
	PolicyName string

	writers      []*string
	accessPolicy awsiam.PolicyDocument
	domainPaths  *string // the domain's ARN + "/*"
}

// The newest OpenSearch 2.x this CDK version knows. Version upgrades are in
// place (EnableVersionUpgrade), never a new domain.
var openSearchVersion = awsopensearchservice.EngineVersion_OPENSEARCH_2_19

func NewLogSearch(scope constructs.Construct, id string, props LogSearchProps) *LogSearch {
	c := constructs.NewConstruct(scope, s(id))
	what := props.What
	if what == "" {
		what = "Ladder"
	}
	instanceType := props.InstanceType
	if instanceType == "" {
		instanceType = "m7g.large.search"
	}
	dataNodes := props.DataNodes
	if dataNodes == 0 {
		dataNodes = 2
	}
	if dataNodes%2 != 0 {
		panic(fmt.Sprintf("LogSearchProps.DataNodes must be a multiple of 2 (two AZs), got %d", dataNodes))
	}
	if props.MasterNodes != 0 && props.MasterNodes != 3 {
		panic(fmt.Sprintf("LogSearchProps.MasterNodes must be 0 or 3, got %d", props.MasterNodes))
	}
	volume := props.VolumeGiB
	if volume == 0 {
		volume = 20
	}
	retentionDays := props.RetentionDays
	if retentionDays == 0 {
		retentionDays = 14
	}
	prefix := props.IndexPrefix
	if prefix == "" {
		prefix = "ladder-logs"
	}
	logRetention := retentionOr(props.LogRetention)

	// One subnet in each of two AZs: zone awareness places half the data
	// nodes (and each index's replica) in each.
	sel := awsec2.SubnetSelection{}
	if props.Subnets != nil {
		sel = *props.Subnets
	}
	sel.OnePerAz = b(true)
	subnets := *props.Vpc.SelectSubnets(&sel).Subnets
	if len(subnets) < 2 {
		panic(fmt.Sprintf("LogSearchProps.Subnets must span at least two AZs, got %d subnet(s)", len(subnets)))
	}
	subnets = subnets[:2]

	key := awskms.NewKey(c, s("Key"), &awskms.KeyProps{
		Description:       s("Encrypts the " + what + " log search domain's data at rest"),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})

	sg := awsec2.NewSecurityGroup(c, s("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      s(what + " log search domain: HTTPS from its writers and its lifecycle function only"),
		AllowAllOutbound: b(false),
	})
	fnSG := awsec2.NewSecurityGroup(c, s("LifecycleSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      s(what + " log search lifecycle function: HTTPS to the domain only"),
		AllowAllOutbound: b(false),
	})
	// The function's two rules are made here, not through Connections, so
	// the custom resource can wait for exactly them (and not for every peer
	// AllowFrom lets in later).
	fnIn := awsec2.NewCfnSecurityGroupIngress(c, s("LifecycleIngress"), &awsec2.CfnSecurityGroupIngressProps{
		GroupId: sg.SecurityGroupId(), SourceSecurityGroupId: fnSG.SecurityGroupId(),
		IpProtocol: s("tcp"), FromPort: n(443), ToPort: n(443),
		Description: s("The lifecycle function configures the domain"),
	})
	fnOut := awsec2.NewCfnSecurityGroupEgress(c, s("LifecycleEgress"), &awsec2.CfnSecurityGroupEgressProps{
		GroupId: fnSG.SecurityGroupId(), DestinationSecurityGroupId: sg.SecurityGroupId(),
		IpProtocol: s("tcp"), FromPort: n(443), ToPort: n(443),
		Description: s("HTTPS to the log search domain"),
	})

	// The function first: its role is the domain's master user.
	fn := NewGoFunction(c, "Lifecycle", GoFunctionProps{
		RepoRoot:       props.RepoRoot,
		Name:           "opensearch-ism",
		Description:    "Applies the log domain's role mappings, index lifecycle policy and index template (custom resource onEvent)",
		Timeout:        awscdk.Duration_Minutes(n(5)),
		MemorySize:     128,
		Vpc:            props.Vpc,
		VpcSubnets:     &awsec2.SubnetSelection{Subnets: &subnets},
		SecurityGroups: []awsec2.ISecurityGroup{fnSG},
		LogRetention:   props.LogRetention,
	})

	// The domain's logs, in log groups this construct owns (retained, with
	// the rung's retention). The resource policy letting the service write
	// to them is a plain AWS::Logs::ResourcePolicy instead of the Node.js
	// custom resource the Domain construct would add.
	logGroup := func(id string) awslogs.LogGroup {
		return awslogs.NewLogGroup(c, s(id), &awslogs.LogGroupProps{
			Retention:     logRetention,
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		})
	}
	slowSearch, slowIndex, appLog := logGroup("SlowSearchLogs"), logGroup("SlowIndexLogs"), logGroup("AppLogs")
	logsPolicy := awslogs.NewResourcePolicy(c, s("LogsPolicy"), &awslogs.ResourcePolicyProps{
		PolicyStatements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(s("es.amazonaws.com"), nil)},
			Actions:    ss("logs:CreateLogStream", "logs:PutLogEvents"),
			Resources:  ss(*slowSearch.LogGroupArn(), *slowIndex.LogGroupArn(), *appLog.LogGroupArn()),
			// Only domains of this account may use the grant.
			Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()}},
		})},
	})

	var capacity = &awsopensearchservice.CapacityConfig{
		DataNodes:            n(float64(dataNodes)),
		DataNodeInstanceType: s(instanceType),
		// Multi-AZ with standby needs three AZs and dedicated managers.
		MultiAzWithStandbyEnabled: b(false),
	}
	if props.MasterNodes > 0 {
		capacity.MasterNodes = n(float64(props.MasterNodes))
		capacity.MasterNodeInstanceType = s(instanceType)
	}
	// The domain has a fixed name so that its access policy can name the
	// domain's own ARN inline (a policy referring to the domain's generated
	// ARN would be a circular reference, which CDK's Domain construct works
	// around with a Node.js custom resource calling UpdateDomainConfig, whose
	// role needs wildcard KMS actions). A fixed name also means a change
	// that would replace the domain fails instead of silently starting an
	// empty one; after deleting the stack, the retained domain must be
	// deleted or renamed away before the same stack is deployed again.
	name := props.DomainName
	if name == "" {
		name = strings.ToLower(*awscdk.Names_UniqueResourceName(c, &awscdk.UniqueResourceNameOptions{
			MaxLength: n(28), Separator: s("-"), AllowedSpecialCharacters: s("-"),
		}))
	}
	domainPaths := awscdk.Stack_Of(c).FormatArn(&awscdk.ArnComponents{
		Service: s("es"), Resource: s("domain"), ResourceName: s(name + "/*"),
	})
	accessPolicy := awsiam.NewPolicyDocument(nil)

	domain := awsopensearchservice.NewDomain(c, s("Domain"), &awsopensearchservice.DomainProps{
		DomainName:           s(name),
		Version:              openSearchVersion(),
		EnableVersionUpgrade: b(true),
		Capacity:             capacity,
		Ebs: &awsopensearchservice.EbsOptions{
			Enabled:    b(true),
			VolumeSize: n(float64(volume)),
			VolumeType: awsec2.EbsDeviceVolumeType_GP3,
		},
		ZoneAwareness:  &awsopensearchservice.ZoneAwarenessConfig{Enabled: b(true), AvailabilityZoneCount: n(2)},
		Vpc:            props.Vpc,
		VpcSubnets:     &[]*awsec2.SubnetSelection{{Subnets: &subnets}},
		SecurityGroups: &[]awsec2.ISecurityGroup{sg},
		EncryptionAtRest: &awsopensearchservice.EncryptionAtRestOptions{
			Enabled: b(true),
			KmsKey:  key,
		},
		NodeToNodeEncryption: b(true),
		EnforceHttps:         b(true),
		TlsSecurityPolicy:    awsopensearchservice.TLSSecurityPolicy_TLS_1_2_PFS,
		FineGrainedAccessControl: &awsopensearchservice.AdvancedSecurityOptions{
			MasterUserArn: fn.Role.RoleArn(),
		},
		Logging: &awsopensearchservice.LoggingOptions{
			SlowSearchLogEnabled: b(true),
			SlowSearchLogGroup:   slowSearch,
			SlowIndexLogEnabled:  b(true),
			SlowIndexLogGroup:    slowIndex,
			AppLogEnabled:        b(true),
			AppLogGroup:          appLog,
		},
		SuppressLogsResourcePolicy: b(true),
		// Service software updates in the off-peak window (22:00 local by
		// default) rather than whenever an operator clicks.
		OffPeakWindowEnabled:     b(true),
		EnableAutoSoftwareUpdate: b(true),
		RemovalPolicy:            awscdk.RemovalPolicy_RETAIN,
	})
	domain.Node().AddDependency(logsPolicy)
	// Statements are added by allow(), also after this constructor
	// (GrantWrite); the document renders when the template is written.
	domain.Node().DefaultChild().(awsopensearchservice.CfnDomain).SetAccessPolicies(accessPolicy)

	ls := &LogSearch{
		Construct:     c,
		Domain:        domain,
		Endpoint:      domain.DomainEndpoint(),
		IndexPrefix:   prefix,
		SecurityGroup: sg,
		Key:           key,
		Function:      fn.Function,
		MasterRole:    fn.Role,
		PolicyName:    prefix + "-retention",
		accessPolicy:  accessPolicy,
		domainPaths:   domainPaths,
	}

	// The access policy: the function may read and write the REST API
	// (fine-grained access control then gives it everything, as master).
	ls.allow("Lifecycle", fn.Role.RoleArn(), "es:ESHttpGet", "es:ESHttpPut", "es:ESHttpPost")
	admins := make([]*string, 0, len(props.AdminRoleArns))
	for i, arn := range props.AdminRoleArns {
		ls.allow(fmt.Sprintf("Admin%d", i+1), s(arn), "es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpPatch", "es:ESHttpDelete")
		admins = append(admins, s(arn))
	}
	suppress(domain, nagReason{
		id:     "AwsSolutions-OS3",
		reason: "The domain is reachable only inside the VPC through its security group; its access policy names IAM roles (signed requests only) rather than source addresses, which inside a VPC with pods on changing addresses is the stronger control.",
	})
	if props.MasterNodes == 0 {
		suppress(domain, nagReason{
			id:     "AwsSolutions-OS4",
			reason: "Two data nodes in two AZs hold the rung's pod logs (rebuildable, retained for days); three dedicated cluster managers would more than double the domain's cost for a log store. Set tier 3's master node count to 3 for a larger domain.",
		})
	}
	provider := newGoProvider(c, fn.Function, "the log domain's lifecycle function", logRetention)

	properties := map[string]any{
		"Endpoint":       ls.Endpoint,
		"PolicyName":     ls.PolicyName,
		"IndexPrefix":    prefix,
		"RetentionDays":  strconv.Itoa(retentionDays),
		"IndexReplicas":  "1",
		"MasterRoleArn":  fn.Role.RoleArn(),
		"WriterRoleArns": []*string{},
		"AdminRoleArns":  admins,
	}
	res := awscdk.NewCustomResource(c, s("LifecycleConfig"), &awscdk.CustomResourceProps{
		ServiceToken:   provider.ServiceToken(),
		ResourceType:   s("Custom::LadderLogLifecycle"),
		Properties:     &properties,
		ServiceTimeout: awscdk.Duration_Minutes(n(10)),
	})
	// After the domain (its access policy is a property) and the function's
	// security group rules, or its first requests would be refused.
	res.Node().AddDependency(domain, fnIn, fnOut)
	ls.Lifecycle = res
	return ls
}

// allow adds an access policy statement for one role.
func (l *LogSearch) allow(sid string, roleArn *string, actions ...string) {
	l.accessPolicy.AddStatements(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        s(sid),
		Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(roleArn)},
		Actions:    ss(actions...),
		Resources:  ss(*l.domainPaths),
	}))
}

// GrantWrite lets role write log documents: the domain's access policy
// allows its signed POST/PUT requests (same account, so no identity policy
// is needed), and the lifecycle function maps it to the "<prefix>-writer"
// role, which may only create <prefix>-* indices and write to them.
func (l *LogSearch) GrantWrite(role awsiam.IRole) {
	l.writers = append(l.writers, role.RoleArn())
	l.allow(fmt.Sprintf("Writer%d", len(l.writers)), role.RoleArn(), "es:ESHttpPost", "es:ESHttpPut")
	writers := make([]any, len(l.writers))
	for i, w := range l.writers {
		writers[i] = w
	}
	l.Lifecycle.Node().DefaultChild().(awscdk.CfnResource).AddPropertyOverride(s("WriterRoleArns"), writers)
}

// AllowFrom lets peer's security group reach the domain on 443.
func (l *LogSearch) AllowFrom(peer awsec2.IConnectable) {
	l.SecurityGroup.Connections().AllowFrom(peer, awsec2.Port_Tcp(n(443)), s("Log writers (HTTPS, SigV4)"))
}
