package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"
)

// EdgeRegion is where AWS requires CloudFront's certificate and web ACL to
// live, and where CloudFront publishes its metrics, whatever the region of
// the distribution's origins.
const EdgeRegion = "us-east-1"

// DefaultPostRateLimit is how many POSTs one client IP may send in five
// minutes before WAF answers 429: one vote a second, far above a person
// re-voting, far below a script flooding the vote endpoint.
const DefaultPostRateLimit = 300

// EdgeProps configure the us-east-1 pieces in front of a rung's CloudFront
// distributions.
type EdgeProps struct {
	// StackProps' region is replaced by us-east-1; the account is kept.
	awscdk.StackProps
	// DNS, when set, gets a certificate for vote.<domain> and
	// result.<domain>, validated through records in the zone.
	DNS *DNSProps
	// PostRateLimit is the number of POST requests one client IP may make in
	// five minutes (0 means DefaultPostRateLimit; WAF accepts 10 or more).
	PostRateLimit float64
	// LogRetention is how long the web ACL's log of blocked and counted
	// requests is kept (empty means one month).
	LogRetention awslogs.RetentionDays
}

// Edge is the stack in us-east-1 holding what CloudFront can only use from
// there. The rung's stack in its own region reads WebAclArn and Certificate
// across regions: with this app's "weak" cross-stack references (cdk.json,
// @aws-cdk/core:defaultCrossStackReferences) each becomes an Output here and
// an Fn::GetStackOutput with Region us-east-1 there, which needs neither an
// account at synth time nor a custom resource. CloudFormation resolves it
// when the reading stack is deployed: should the ACL or certificate ever be
// replaced (a new domain), deploy the edge stack and then the rung's (a
// domain change edits both templates; otherwise `cdk deploy --force`).
type Edge struct {
	awscdk.Stack
	WebAcl    awswafv2.CfnWebACL
	WebAclArn *string
	// Certificate covers vote.<domain> and result.<domain>; nil without DNS.
	Certificate awscertificatemanager.ICertificate
}

// newEdgeRegionStack is a stack in us-east-1 (EdgeRegion) with sp's name,
// description, tags and account, for what AWS keeps only there: CloudFront's
// certificates, web ACLs and metrics, and Route53's health check metrics.
func newEdgeRegionStack(scope constructs.Construct, id string, sp awscdk.StackProps) awscdk.Stack {
	env := awscdk.Environment{Region: s(EdgeRegion)}
	if sp.Env != nil {
		env.Account = sp.Env.Account
	}
	sp.Env = &env
	// Needed by "strong" references (the SSM-backed ExportWriter/Reader);
	// harmless with the weak ones this app uses.
	sp.CrossRegionReferences = b(true)
	return awscdk.NewStack(scope, s(id), &sp)
}

// VoteHostname and ResultHostname are the names the two sites get under a
// configured domain.
func VoteHostname(d *DNSProps) string   { return "vote." + d.DomainName }
func ResultHostname(d *DNSProps) string { return "result." + d.DomainName }

func NewEdge(scope constructs.Construct, id string, props EdgeProps) *Edge {
	stack := newEdgeRegionStack(scope, id, props.StackProps)
	e := &Edge{Stack: stack}

	limit := props.PostRateLimit
	if limit == 0 {
		limit = DefaultPostRateLimit
	}

	e.WebAcl = NewVoteWebAcl(stack, VoteWebAclProps{
		Scope:         "CLOUDFRONT",
		Description:   "Ladder Tier 2 CloudFront distributions: operator endpoints hidden, a per-IP rate limit on vote POSTs, AWS managed rules",
		MetricName:    "LadderEdgeWebAcl",
		PostRateLimit: limit,
		HideReadyz:    true,
		LogRetention:  props.LogRetention,
	})
	e.WebAclArn = e.WebAcl.AttrArn()

	if props.DNS != nil {
		zone := awsroute53.HostedZone_FromHostedZoneAttributes(stack, s("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: s(props.DNS.HostedZoneID),
			ZoneName:     s(props.DNS.DomainName),
		})
		e.Certificate = awscertificatemanager.NewCertificate(stack, s("Certificate"), &awscertificatemanager.CertificateProps{
			DomainName:              s(VoteHostname(props.DNS)),
			SubjectAlternativeNames: ss(ResultHostname(props.DNS)),
			// ACM writes and keeps the validation records in the zone, and
			// renews on its own while they stay.
			Validation: awscertificatemanager.CertificateValidation_FromDns(zone),
		})
	}
	return e
}
