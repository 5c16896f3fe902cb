package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"
)

// VoteWebAclProps configure the web ACL in front of the voting app.
type VoteWebAclProps struct {
	// Scope is "CLOUDFRONT" (made in us-east-1, for distributions) or
	// "REGIONAL" (for a load balancer in the stack's region).
	Scope       string
	Description string
	MetricName  string
	// PostRateLimit is how many POSTs one client IP may send in five
	// minutes (WAF accepts 10 or more).
	PostRateLimit float64
	// HideReadyz blocks /readyz from outside as well as /metrics; leave it
	// off where Route53 health checks probe /readyz through the ACL.
	HideReadyz bool
	// LogRetention keeps the log of blocked and counted requests (empty
	// means one month).
	LogRetention awslogs.RetentionDays
}

// NewVoteWebAcl adds, directly in scope (so a stack's logical ids do not
// depend on which rung asks), a WAFv2 web ACL with the voting app's rules:
// operator endpoints hidden, a per-IP rate limit on vote POSTs, and AWS's
// IP reputation, common and known-bad-input rule groups; and the ACL's log
// of what it blocked, with cookies redacted.
func NewVoteWebAcl(scope constructs.Construct, props VoteWebAclProps) awswafv2.CfnWebACL {
	stack := awscdk.Stack_Of(scope)
	limit := props.PostRateLimit
	if limit < 10 || limit > 2e9 {
		panic(fmt.Sprintf("web ACL: PostRateLimit %v is outside WAF's 10..2000000000", limit))
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
	// Behind Route53 failover the health checkers must reach /readyz from
	// the internet; it answers from a Valkey PING, no database query.
	var hidden *awswafv2.CfnWebACL_StatementProperty
	if props.HideReadyz {
		hidden = &awswafv2.CfnWebACL_StatementProperty{
			OrStatement: &awswafv2.CfnWebACL_OrStatementProperty{
				Statements: []any{opsPath("/metrics"), opsPath("/readyz")},
			},
		}
	} else {
		hidden = opsPath("/metrics")
	}
	rules := []any{
		&awswafv2.CfnWebACL_RuleProperty{
			Name:      s("OperatorEndpointsNotPublic"),
			Priority:  n(0),
			Statement: hidden,
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
					// The viewer's address as CloudFront (or the load
					// balancer) sees it, not a forwarded header a client
					// could forge.
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
	acl := awswafv2.NewCfnWebACL(scope, s("WebAcl"), &awswafv2.CfnWebACLProps{
		Description:      s(props.Description),
		Scope:            s(props.Scope),
		DefaultAction:    &awswafv2.CfnWebACL_DefaultActionProperty{Allow: map[string]any{}},
		Rules:            &rules,
		VisibilityConfig: visibility(props.MetricName),
	})

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
	wafLogs := awslogs.NewLogGroup(scope, s("WafLogs"), &awslogs.LogGroupProps{
		LogGroupName:  awscdk.Fn_Join(s(""), &[]*string{s("aws-waf-logs-"), stackUUID}),
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// The log delivery service may write to this group only, on behalf of
	// this account. Left to itself, WAF would append the group to a shared
	// account-wide policy, which fails once that policy reaches its 5,120
	// characters; this one is the stack's own and goes with it.
	delivery := awslogs.NewResourcePolicy(scope, s("WafLogsDelivery"), &awslogs.ResourcePolicyProps{
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
	logging := awswafv2.NewCfnLoggingConfiguration(scope, s("WafLogging"), &awswafv2.CfnLoggingConfigurationProps{
		ResourceArn: acl.AttrArn(),
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
	return acl
}
