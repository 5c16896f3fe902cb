package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
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

// VoteHostname and ResultHostname are the names the two sites get under a
// configured domain.
func VoteHostname(d *DNSProps) string   { return "vote." + d.DomainName }
func ResultHostname(d *DNSProps) string { return "result." + d.DomainName }

func NewEdge(scope constructs.Construct, id string, props EdgeProps) *Edge {
	sp := props.StackProps
	env := awscdk.Environment{Region: s(EdgeRegion)}
	if sp.Env != nil {
		env.Account = sp.Env.Account
	}
	sp.Env = &env
	// Needed by "strong" references (the SSM-backed ExportWriter/Reader);
	// harmless with the weak ones this app uses.
	sp.CrossRegionReferences = b(true)
	stack := awscdk.NewStack(scope, s(id), &sp)
	e := &Edge{Stack: stack}

	limit := props.PostRateLimit
	if limit == 0 {
		limit = DefaultPostRateLimit
	}
	if limit < 10 || limit > 2e9 {
		panic(fmt.Sprintf("edge: PostRateLimit %v is outside WAF's 10..2000000000", limit))
	}

	visibility := func(metric string) *awswafv2.CfnWebACL_VisibilityConfigProperty {
		return &awswafv2.CfnWebACL_VisibilityConfigProperty{
			CloudWatchMetricsEnabled: b(true),
			MetricName:               s(metric),
			SampledRequestsEnabled:   b(true),
		}
	}
	managed := func(priority float64, name string) *awswafv2.CfnWebACL_RuleProperty {
		return &awswafv2.CfnWebACL_RuleProperty{
			Name:     s(name),
			Priority: n(priority),
			Statement: &awswafv2.CfnWebACL_StatementProperty{
				ManagedRuleGroupStatement: &awswafv2.CfnWebACL_ManagedRuleGroupStatementProperty{
					VendorName: s("AWS"),
					Name:       s(name),
				},
			},
			// The group's own actions (mostly block) apply as AWS ships them.
			OverrideAction:   &awswafv2.CfnWebACL_OverrideActionProperty{None: map[string]any{}},
			VisibilityConfig: visibility(name),
		}
	}
	// The services' operator endpoints (/metrics, /readyz) are for the load
	// balancer's and Prometheus's eyes inside the VPC: through CloudFront they
	// would show internals and let anyone make every request ping the
	// database. The path is decoded and normalised first, so an encoded or
	// dotted spelling does not slip past.
	opsPath := func(prefix string) *awswafv2.CfnWebACL_StatementProperty {
		return &awswafv2.CfnWebACL_StatementProperty{
			ByteMatchStatement: &awswafv2.CfnWebACL_ByteMatchStatementProperty{
				FieldToMatch:         &awswafv2.CfnWebACL_FieldToMatchProperty{UriPath: map[string]any{}},
				PositionalConstraint: s("STARTS_WITH"),
				SearchString:         s(prefix),
				TextTransformations: []any{
					&awswafv2.CfnWebACL_TextTransformationProperty{Priority: n(0), Type: s("URL_DECODE")},
					&awswafv2.CfnWebACL_TextTransformationProperty{Priority: n(1), Type: s("NORMALIZE_PATH")},
				},
			},
		}
	}
	rules := []any{
		&awswafv2.CfnWebACL_RuleProperty{
			Name:     s("OperatorEndpointsNotPublic"),
			Priority: n(0),
			Statement: &awswafv2.CfnWebACL_StatementProperty{
				OrStatement: &awswafv2.CfnWebACL_OrStatementProperty{
					Statements: []any{opsPath("/metrics"), opsPath("/readyz")},
				},
			},
			Action: &awswafv2.CfnWebACL_RuleActionProperty{
				Block: &awswafv2.CfnWebACL_BlockActionProperty{
					CustomResponse: &awswafv2.CfnWebACL_CustomResponseProperty{ResponseCode: n(404)},
				},
			},
			VisibilityConfig: visibility("OperatorEndpointsNotPublic"),
		},
		// Next, so a flood is turned away before the (costlier) managed
		// groups inspect it. Only POSTs count: page views, static files and
		// the result stream's reconnects are not votes and must not get a
		// crowd behind one NAT address blocked.
		&awswafv2.CfnWebACL_RuleProperty{
			Name:     s("VotePostRateLimit"),
			Priority: n(1),
			Statement: &awswafv2.CfnWebACL_StatementProperty{
				RateBasedStatement: &awswafv2.CfnWebACL_RateBasedStatementProperty{
					Limit:               n(limit),
					EvaluationWindowSec: n(300),
					// The viewer's address as CloudFront sees it, not a
					// forwarded header a client could forge.
					AggregateKeyType: s("IP"),
					ScopeDownStatement: &awswafv2.CfnWebACL_StatementProperty{
						ByteMatchStatement: &awswafv2.CfnWebACL_ByteMatchStatementProperty{
							FieldToMatch:         &awswafv2.CfnWebACL_FieldToMatchProperty{Method: map[string]any{}},
							PositionalConstraint: s("EXACTLY"),
							SearchString:         s("POST"),
							TextTransformations: []any{
								&awswafv2.CfnWebACL_TextTransformationProperty{Priority: n(0), Type: s("NONE")},
							},
						},
					},
				},
			},
			// 429 tells a well-behaved client to back off; the default 403
			// would read as "forbidden".
			Action: &awswafv2.CfnWebACL_RuleActionProperty{
				Block: &awswafv2.CfnWebACL_BlockActionProperty{
					CustomResponse: &awswafv2.CfnWebACL_CustomResponseProperty{ResponseCode: n(429)},
				},
			},
			VisibilityConfig: visibility("VotePostRateLimit"),
		},
		managed(2, "AWSManagedRulesAmazonIpReputationList"),
		managed(3, "AWSManagedRulesCommonRuleSet"),
		managed(4, "AWSManagedRulesKnownBadInputsRuleSet"),
	}
	e.WebAcl = awswafv2.NewCfnWebACL(stack, s("WebAcl"), &awswafv2.CfnWebACLProps{
		Description:      s("Ladder Tier 2 CloudFront distributions: operator endpoints hidden, a per-IP rate limit on vote POSTs, AWS managed rules"),
		Scope:            s("CLOUDFRONT"),
		DefaultAction:    &awswafv2.CfnWebACL_DefaultActionProperty{Allow: map[string]any{}},
		Rules:            &rules,
		VisibilityConfig: visibility("LadderEdgeWebAcl"),
	})
	e.WebAclArn = e.WebAcl.AttrArn()

	// WAF logs only what it blocked or counted, so the log costs nothing
	// while nothing is wrong and tells why a voter was turned away when
	// something is. The group survives the stack (RETAIN); its name must
	// start with aws-waf-logs-, and the stack id's UUID in it lets a
	// re-created stack make a new group beside the retained one.
	retention := props.LogRetention
	if retention == "" {
		retention = awslogs.RetentionDays_ONE_MONTH
	}
	stackUUID := awscdk.Fn_Select(n(2), awscdk.Fn_Split(s("/"), awscdk.Aws_STACK_ID(), nil))
	wafLogs := awslogs.NewLogGroup(stack, s("WafLogs"), &awslogs.LogGroupProps{
		LogGroupName:  awscdk.Fn_Join(s(""), &[]*string{s("aws-waf-logs-"), stackUUID}),
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// The log delivery service may write to this group only, on behalf of
	// this account. Left to itself, WAF would append the group to a shared
	// account-wide policy, which fails once that policy reaches its 5,120
	// characters; this one is the stack's own and goes with it.
	delivery := awslogs.NewResourcePolicy(stack, s("WafLogsDelivery"), &awslogs.ResourcePolicyProps{
		PolicyStatements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(s("delivery.logs.amazonaws.com"), nil)},
			Actions:    ss("logs:CreateLogStream", "logs:PutLogEvents"),
			Resources:  ss(*wafLogs.LogGroupArn()),
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"aws:SourceAccount": stack.Account()},
				"ArnLike": map[string]any{"aws:SourceArn": stack.FormatArn(&awscdk.ArnComponents{
					Service: s("logs"), Resource: s("*"), ArnFormat: awscdk.ArnFormat_NO_RESOURCE_NAME,
				})},
			},
		})},
	})
	// WAF wants the group's ARN without the ":*" that LogGroupArn carries.
	logging := awswafv2.NewCfnLoggingConfiguration(stack, s("WafLogging"), &awswafv2.CfnLoggingConfigurationProps{
		ResourceArn: e.WebAclArn,
		LogDestinationConfigs: &[]any{stack.FormatArn(&awscdk.ArnComponents{
			Service:      s("logs"),
			Resource:     s("log-group"),
			ResourceName: wafLogs.LogGroupName(),
			ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
		})},
		// LoggingFilter and SingleHeader are free-form JSON in the
		// CloudFormation schema, so they are written with its own key names.
		LoggingFilter: map[string]any{
			"DefaultBehavior": "DROP",
			"Filters": []any{map[string]any{
				"Behavior":    "KEEP",
				"Requirement": "MEETS_ANY",
				"Conditions": []any{
					map[string]any{"ActionCondition": map[string]any{"Action": "BLOCK"}},
					map[string]any{"ActionCondition": map[string]any{"Action": "COUNT"}},
				},
			}},
		},
		// The voter_id cookie identifies a voter; it has no place in a log.
		RedactedFields: []any{&awswafv2.CfnLoggingConfiguration_FieldToMatchProperty{
			SingleHeader: map[string]any{"Name": "cookie"},
		}},
	})
	logging.Node().AddDependency(wafLogs, delivery)

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
