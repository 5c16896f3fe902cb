package stacks

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53targets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
)

// The headers CloudFront adds to every request it sends to the load
// balancer. The listener serves only requests carrying the origin secret
// (so the ALB's public address cannot be used to go around WAF), and routes
// them to the vote or result service by the site header.
const (
	OriginVerifyHeader = "X-Ladder-Origin-Verify"
	SiteHeader         = "X-Ladder-Site"
	VoteSite           = "vote"
	ResultSite         = "result"
)

// VoteAppCdnProps put CloudFront in front of a rung's load balancer.
type VoteAppCdnProps struct {
	// LoadBalancer serves both sites' dynamic paths, over HTTP on port 80.
	LoadBalancer awselasticloadbalancingv2.IApplicationLoadBalancer
	// OriginSecret's whole SecretString is the value of OriginVerifyHeader;
	// it must be a valid header value (generate it without punctuation).
	OriginSecret awssecretsmanager.ISecret
	// WebAclArn is a CLOUDFRONT-scope WAFv2 web ACL (Edge.WebAclArn).
	WebAclArn *string
	// Certificate (Edge.Certificate, in us-east-1) and DNS come together:
	// with them the sites are vote.<domain> and result.<domain>; without,
	// their *.cloudfront.net names.
	Certificate awscertificatemanager.ICertificate
	DNS         *DNSProps
	// VoteStaticDir and ResultStaticDir are the pages' asset directories,
	// uploaded to static/vote/ and static/result/ (absolute paths).
	VoteStaticDir, ResultStaticDir string
	// LogRetentionDays is how long CloudFront and S3 access logs are kept.
	LogRetentionDays float64
}

// VoteAppCdn is two CloudFront distributions, one per site as in the
// original app, each sending dynamic paths uncached to the load balancer and
// /static/* to a private bucket holding both pages' assets.
type VoteAppCdn struct {
	constructs.Construct
	Vote, Result awscloudfront.Distribution
	StaticBucket awss3.Bucket
	// LogBucket receives CloudFront's standard logs and the static bucket's
	// server access logs.
	LogBucket awss3.Bucket
	// StaticDeployments upload the assets. Make whatever rolls out a new app
	// version depend on them, so no page naming a new ?v= hash is served
	// before its asset is in the bucket (CloudFront would otherwise cache
	// the old bytes under the new URL).
	StaticDeployments  []awss3deployment.BucketDeployment
	VoteURL, ResultURL *string
}

// CdnSite names a distribution for alarms.
type CdnSite struct {
	Name         string
	Distribution awscloudfront.IDistribution
}

// Sites lists the distributions, vote first.
func (c *VoteAppCdn) Sites() []CdnSite {
	return []CdnSite{{"Vote", c.Vote}, {"Result", c.Result}}
}

// Origin timeouts. CloudFront ends an origin response when no byte arrives
// for readTimeout. The result page's /events stream sends a ": ping"
// comment every 15 s, so 60 s rides out three lost pings (a GC pause, a
// slow replica) before a viewer's stream is cut, where the 30 s default
// would allow one. The vote site has no streams and keeps 30 s, so a hung
// replica turns into a 504 quickly. Keep-alive stays below the ALB's 60 s
// idle timeout, so CloudFront never reuses a connection the ALB is closing.
var (
	voteReadTimeout   = awscdk.Duration_Seconds(n(30))
	resultReadTimeout = awscdk.Duration_Seconds(n(60))
	originKeepalive   = awscdk.Duration_Seconds(n(30))
)

// staticCacheControl is what browsers and CloudFront get with an asset.
// The pages name assets by content hash (?v=), but S3 cannot check that the
// hash asked for is the one it holds (the services do, and only then answer
// "immutable" for a year). A day bounds how long a mismatch made during a
// deploy or a rollback can be cached, at the price of one conditional
// request a day per asset.
const staticCacheControl = "public, max-age=86400"

func NewVoteAppCdn(scope constructs.Construct, id string, props VoteAppCdnProps) *VoteAppCdn {
	if (props.DNS == nil) != (props.Certificate == nil) {
		panic("VoteAppCdn: DNS and Certificate are set together or not at all")
	}
	if props.VoteStaticDir == "" || props.ResultStaticDir == "" {
		panic("VoteAppCdn: VoteStaticDir and ResultStaticDir are required")
	}
	if props.LogRetentionDays < 1 {
		panic(fmt.Sprintf("VoteAppCdn: LogRetentionDays %v, want at least 1", props.LogRetentionDays))
	}
	scope = constructs.NewConstruct(scope, s(id))
	c := &VoteAppCdn{Construct: scope}

	c.LogBucket = newCdnLogBucket(scope, "Logs", props.LogRetentionDays)

	c.StaticBucket = newStaticBucket(scope, c.LogBucket)

	c.StaticDeployments = deployStaticAssets(scope, c.StaticBucket, props.VoteStaticDir, props.ResultStaticDir, props.LogRetentionDays)

	staticCache := newStaticCachePolicy(scope)
	oac := awscloudfront.NewS3OriginAccessControl(scope, s("StaticOac"), &awscloudfront.S3OriginAccessControlProps{
		Description: s("CloudFront reads the Ladder static bucket, signing with SigV4"),
		Signing:     awscloudfront.Signing_SIGV4_ALWAYS(),
	})
	// SECURITY_HEADERS adds HSTS (the sites are HTTPS only), nosniff,
	// frame and referrer policies to every response, dynamic or static.
	headers := awscloudfront.ResponseHeadersPolicy_SECURITY_HEADERS()

	staticBehavior := &awscloudfront.BehaviorOptions{
		Origin: awscloudfrontorigins.S3BucketOrigin_WithOriginAccessControl(c.StaticBucket, &awscloudfrontorigins.S3BucketOriginWithOACProps{
			OriginAccessControl: oac,
		}),
		ViewerProtocolPolicy:  awscloudfront.ViewerProtocolPolicy_REDIRECT_TO_HTTPS,
		AllowedMethods:        awscloudfront.AllowedMethods_ALLOW_GET_HEAD(),
		CachePolicy:           staticCache,
		ResponseHeadersPolicy: headers,
		Compress:              b(true),
	}

	site := func(id, name, comment string, methods awscloudfront.AllowedMethods, readTimeout awscdk.Duration) awscloudfront.Distribution {
		origin := awscloudfrontorigins.NewLoadBalancerV2Origin(props.LoadBalancer, &awscloudfrontorigins.LoadBalancerV2OriginProps{
			// The ALB has no certificate for its own AWS name, so CloudFront
			// speaks HTTP to it; viewers only ever speak HTTPS to CloudFront.
			ProtocolPolicy: awscloudfront.OriginProtocolPolicy_HTTP_ONLY,
			CustomHeaders: &map[string]*string{
				// A {{resolve:secretsmanager:...}} dynamic reference: CloudFormation
				// resolves it at deploy time, the template never holds the value.
				OriginVerifyHeader: props.OriginSecret.SecretValue().UnsafeUnwrap(),
				SiteHeader:         s(name),
			},
			ReadTimeout:      readTimeout,
			KeepaliveTimeout: originKeepalive,
		})
		dp := &awscloudfront.DistributionProps{
			Comment: s(comment),
			DefaultBehavior: &awscloudfront.BehaviorOptions{
				Origin:               origin,
				ViewerProtocolPolicy: awscloudfront.ViewerProtocolPolicy_REDIRECT_TO_HTTPS,
				AllowedMethods:       methods,
				// Pages are per voter (the voter_id cookie, the choice made),
				// POSTs are votes and /events is a live stream: nothing here
				// may be cached, and the origin sees every viewer header,
				// cookie and query string (but CloudFront's own Host, which
				// the ALB does not route on).
				CachePolicy:           awscloudfront.CachePolicy_CACHING_DISABLED(),
				OriginRequestPolicy:   awscloudfront.OriginRequestPolicy_ALL_VIEWER_EXCEPT_HOST_HEADER(),
				ResponseHeadersPolicy: headers,
				// Nothing to compress with caching disabled, and the event
				// stream must reach the viewer event by event.
				Compress: b(false),
			},
			AdditionalBehaviors: &map[string]*awscloudfront.BehaviorOptions{"/static/*": staticBehavior},
			WebAclId:            props.WebAclArn,
			HttpVersion:         awscloudfront.HttpVersion_HTTP2_AND_3,
			EnableLogging:       b(true),
			LogBucket:           c.LogBucket,
			LogFilePrefix:       s("cloudfront/" + name + "/"),
			// voter_id identifies a voter; the logs do without it.
			LogIncludesCookies: b(false),
			// OriginLatency (time to first byte) for the latency alarms is an
			// additional metric, billed as CloudWatch custom metrics: eight
			// per distribution, about US$2.40 a month each at list price.
			PublishAdditionalMetrics: b(true),
		}
		if props.DNS != nil {
			host := VoteHostname(props.DNS)
			if name == ResultSite {
				host = ResultHostname(props.DNS)
			}
			dp.DomainNames = ss(host)
			dp.Certificate = props.Certificate
			dp.MinimumProtocolVersion = awscloudfront.SecurityPolicyProtocol_TLS_V1_2_2021
		}
		d := awscloudfront.NewDistribution(scope, s(id), dp)
		reasons := []nagReason{
			{id: "AwsSolutions-CFR1", reason: "A public vote: anyone anywhere may vote and watch the result; abuse is handled by WAF's rate limit and managed rules, not by country."},
			{id: "AwsSolutions-CFR5", reason: "The origin is the ALB over HTTP: it has no certificate for its AWS-assigned name. Viewers reach CloudFront over HTTPS only (HTTP is redirected), and the ALB accepts only requests bearing the origin secret header."},
		}
		if props.DNS == nil {
			reasons = append(reasons, nagReason{
				id:     "AwsSolutions-CFR4",
				reason: "Without a domain the site uses CloudFront's default *.cloudfront.net certificate, whose minimum TLS version CloudFront fixes; set domainName/hostedZoneId to get an ACM certificate with TLSv1.2_2021.",
			})
		}
		suppress(d, reasons...)
		return d
	}
	c.Vote = site("Vote", VoteSite, "Ladder vote page", awscloudfront.AllowedMethods_ALLOW_ALL(), voteReadTimeout)
	c.Result = site("Result", ResultSite, "Ladder result page", awscloudfront.AllowedMethods_ALLOW_GET_HEAD(), resultReadTimeout)

	c.VoteURL = url(c.Vote.DistributionDomainName())
	c.ResultURL = url(c.Result.DistributionDomainName())
	if props.DNS != nil {
		zone := awsroute53.HostedZone_FromHostedZoneAttributes(scope, s("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: s(props.DNS.HostedZoneID),
			ZoneName:     s(props.DNS.DomainName),
		})
		for _, r := range []struct {
			id   string
			host string
			dist awscloudfront.Distribution
		}{
			{"Vote", VoteHostname(props.DNS), c.Vote},
			{"Result", ResultHostname(props.DNS), c.Result},
		} {
			target := awsroute53.RecordTarget_FromAlias(awsroute53targets.NewCloudFrontTarget(r.dist))
			awsroute53.NewARecord(scope, s(r.id+"Alias"), &awsroute53.ARecordProps{Zone: zone, RecordName: s(r.host), Target: target})
			awsroute53.NewAaaaRecord(scope, s(r.id+"AliasIpv6"), &awsroute53.AaaaRecordProps{Zone: zone, RecordName: s(r.host), Target: target})
		}
		c.VoteURL = s(fmt.Sprintf("https://%s/", VoteHostname(props.DNS)))
		c.ResultURL = s(fmt.Sprintf("https://%s/", ResultHostname(props.DNS)))
	}
	return c
}

// StaticNoncurrentVersionDays is how long a static bucket keeps replaced
// asset versions. Every deploy replaces the assets; old versions are rebuilt
// from git, so three months of them is enough to look back. A DR replica of
// a static bucket keeps its noncurrent versions as long.
const StaticNoncurrentVersionDays = 90

// newCdnLogBucket receives CloudFront's standard logs and a static bucket's
// server access logs, kept retentionDays.
//
// CloudFront's standard (legacy) logs are written by the awslogsdelivery
// account through an ACL grant, so this bucket keeps ACLs enabled (with
// the bucket owner owning what is delivered); Block Public Access still
// refuses any public grant. Standard logging v2 would avoid ACLs, but its
// delivery source must be created in us-east-1, away from the bucket.
// SSE-S3 because S3 server access logging cannot write to SSE-KMS.
func newCdnLogBucket(scope constructs.Construct, id string, retentionDays float64) awss3.Bucket {
	return awss3.NewBucket(scope, s(id), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        b(true),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_PREFERRED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration:                          awscdk.Duration_Days(n(retentionDays)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(n(1)),
		}},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
}

// newStaticBucket ("Static" in scope) holds both pages' assets, read by
// CloudFront through an origin access control, its access logged to
// logBucket under s3/static/.
//
// SSE-S3, not KMS: with SSE-KMS the key policy must let CloudFront
// decrypt for the distributions, which depend on the bucket, which
// depends on the key (a cycle CDK breaks only by trusting every
// distribution of the account). These are public web assets: encryption
// at rest is what they need, not access control through a key.
func newStaticBucket(scope constructs.Construct, logBucket awss3.IBucket) awss3.Bucket {
	return awss3.NewBucket(scope, s("Static"), &awss3.BucketProps{
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             b(true),
		Versioned:              b(true),
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		ServerAccessLogsBucket: logBucket,
		ServerAccessLogsPrefix: s("s3/static/"),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			NoncurrentVersionExpiration:         awscdk.Duration_Days(n(StaticNoncurrentVersionDays)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(n(1)),
		}},
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		AutoDeleteObjects: b(false),
	})
}

// newStaticCachePolicy ("StaticCachePolicy" in scope) caches the assets by
// path and ?v=.
//
// The content hash is in the ?v= query string; a policy ignoring query
// strings (like the managed CachingOptimized) would keep serving the
// previous bytes after a deploy. Only v is in the key and forwarded;
// other query strings neither split the cache nor reach S3.
func newStaticCachePolicy(scope constructs.Construct) awscloudfront.CachePolicy {
	return awscloudfront.NewCachePolicy(scope, s("StaticCachePolicy"), &awscloudfront.CachePolicyProps{
		Comment:                    s("Ladder static assets: versioned by ?v=<content hash>"),
		QueryStringBehavior:        awscloudfront.CacheQueryStringBehavior_AllowList(s("v")),
		HeaderBehavior:             awscloudfront.CacheHeaderBehavior_None(),
		CookieBehavior:             awscloudfront.CacheCookieBehavior_None(),
		MinTtl:                     awscdk.Duration_Seconds(n(0)),
		DefaultTtl:                 awscdk.Duration_Days(n(1)),
		MaxTtl:                     awscdk.Duration_Days(n(365)),
		EnableAcceptEncodingGzip:   b(true),
		EnableAcceptEncodingBrotli: b(true),
	})
}

func url(host *string) *string {
	return awscdk.Fn_Join(s(""), &[]*string{s("https://"), host, s("/")})
}

// deployStaticAssets uploads each page's asset directory under its own
// prefix, one deployment per prefix: pruning (deleting what the source no
// longer has) then stays inside the deployment's own prefix and never
// touches the other page's files.
//
// BucketDeployment would grant its handler s3:GetObject*, s3:List*,
// s3:DeleteObject* and more on both buckets. It gets a role of its own
// instead, closed to those grants, that may read exactly the two asset
// zips, list the static bucket, and write and delete under the two
// prefixes; and a log group with the rung's retention.
func deployStaticAssets(c constructs.Construct, bucket awss3.Bucket, voteDir, resultDir string, retentionDays float64) []awss3deployment.BucketDeployment {
	logs := awslogs.NewCfnLogGroup(c, s("AssetDeployLogs"), &awslogs.CfnLogGroupProps{
		RetentionInDays: n(retentionDays),
	})
	logs.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	// An L1 because the retention comes in days; BucketDeployment takes an
	// L2 interface, so the group is also seen through one.
	logGroup := awslogs.LogGroup_FromLogGroupName(c, s("AssetDeployLogGroup"), logs.Ref())
	role := awsiam.NewRole(c, s("AssetDeployRole"), &awsiam.RoleProps{
		Description: s("Copies the vote and result pages' static assets into the static bucket at deploy time"),
		AssumedBy:   awsiam.NewServicePrincipal(s("lambda.amazonaws.com"), nil),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   ss("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: ss(*logs.AttrArn()),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// `aws s3 sync` compares by listing the destination.
		Actions:   ss("s3:ListBucket"),
		Resources: ss(*bucket.BucketArn()),
	}))

	var out []awss3deployment.BucketDeployment
	var written []string
	for _, site := range []struct{ id, dir, prefix string }{
		{"VoteAssets", voteDir, "static/vote/"},
		{"ResultAssets", resultDir, "static/result/"},
	} {
		zip := awss3assets.NewAsset(c, s(site.id+"Zip"), &awss3assets.AssetProps{Path: s(site.dir)})
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   ss("s3:GetObject"),
			Resources: ss(*zip.Bucket().ArnForObjects(zip.S3ObjectKey())),
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   ss("s3:PutObject", "s3:DeleteObject"),
			Resources: ss(*bucket.ArnForObjects(s(site.prefix + "*"))),
		}))
		written = append(written, site.prefix+"*")
		d := awss3deployment.NewBucketDeployment(c, s(site.id), &awss3deployment.BucketDeploymentProps{
			Sources:              &[]awss3deployment.ISource{awss3deployment.Source_Bucket(zip.Bucket(), zip.S3ObjectKey())},
			DestinationBucket:    bucket,
			DestinationKeyPrefix: s(site.prefix),
			Prune:                b(true),
			// The bucket outlives the stack; so do its objects.
			RetainOnDelete: b(true),
			CacheControl:   &[]awss3deployment.CacheControl{awss3deployment.CacheControl_FromString(s(staticCacheControl))},
			Role:           role.WithoutPolicyUpdates(nil),
			LogGroup:       logGroup,
			// A memory size no other deployment in the stack is likely to
			// pick keeps this handler (a per-stack singleton keyed by memory
			// size) and its narrow role to these two deployments: a few
			// small files need no more.
			MemoryLimit: n(assetDeployMemoryMiB),
		})
		d.Node().AddDependency(role)
		out = append(out, d)
	}

	bucketID := *awscdk.Stack_Of(c).GetLogicalId(bucket.Node().DefaultChild().(awscdk.CfnElement))
	applies := make([]string, 0, len(written))
	for _, w := range written {
		applies = append(applies, "Resource::<"+bucketID+".Arn>/"+w)
	}
	suppress(role, nagReason{
		id:        "AwsSolutions-IAM5",
		reason:    "The deployment writes and prunes whatever files the page's asset directory holds, so it may put and delete any key under that page's prefix of the static bucket, and nowhere else.",
		appliesTo: applies,
	})
	for _, child := range *awscdk.Stack_Of(c).Node().Children() {
		id := *child.Node().Id()
		if strings.HasPrefix(id, "Custom::CDKBucketDeployment") && strings.HasSuffix(id, fmt.Sprintf("%dMiB", assetDeployMemoryMiB)) {
			suppress(child, nagReason{
				id:     "AwsSolutions-L1",
				reason: "CDK's BucketDeployment handler: its Python runtime is fixed by the CDK release that ships its code, and moves forward with CDK upgrades.",
			})
		}
	}
	return out
}

const assetDeployMemoryMiB = 512
