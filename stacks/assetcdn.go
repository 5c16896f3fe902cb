package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/constructs-go/constructs/v10"
)

// AssetCdnProps put the vote and result pages' static assets in a bucket
// replicated to the recovery region, behind one distribution that fails
// over to the replica.
type AssetCdnProps struct {
	// VoteStaticDir and ResultStaticDir are the pages' asset directories,
	// uploaded to static/vote/ and static/result/ (absolute paths).
	VoteStaticDir, ResultStaticDir string
	// The DR replica, made in the DR stack by NewAssetReplicaBucket and
	// read here as tokens (weak cross-region references): its ARN (the
	// replication destination) and name (the replication metrics), its
	// regional domain name (the failover origin), its key
	// (ReplicaBucket.Key) and its region.
	ReplicaBucketArn, ReplicaBucketName, ReplicaBucketDomainName, ReplicaKeyArn *string
	ReplicaRegion                                                               string
	// LogRetentionDays is how long CloudFront and S3 access logs are kept.
	LogRetentionDays float64
	// AlarmAction, when set, is notified when replication fails or falls
	// behind.
	AlarmAction awscloudwatch.IAlarmAction
}

// AssetCdn is the static assets of a two-region rung: a bucket in this
// (the primary) region, replicated to the DR region, and a distribution
// whose origin group reads the primary bucket and, when that fails, the DR
// replica, so pages keep their styles and scripts while the primary region
// is down. The pages name assets as URL + /static/<page>/<file>?v=<hash>.
type AssetCdn struct {
	constructs.Construct
	Bucket awss3.Bucket
	// LogBucket receives the distribution's standard logs and the bucket's
	// server access logs.
	LogBucket    awss3.Bucket
	Distribution awscloudfront.Distribution
	// URL is https://<distribution domain>, without a trailing slash.
	URL *string
	// Deployments upload the assets; make whatever rolls out a new app
	// version depend on them (see VoteAppCdn.StaticDeployments).
	Deployments []awss3deployment.BucketDeployment
	Replication *BucketReplication
}

// assetFailoverCodes are the primary origin's answers on which CloudFront
// asks the DR replica instead: 403 is also how S3 answers a missing key to
// a reader without ListBucket, 404 a key not there (yet, or any more), and
// 5xx a region in trouble. Connection failures and timeouts fail over too.
var assetFailoverCodes = []float64{403, 404, 500, 502, 503, 504}

// NewAssetReplicaBucket is the DR replica an AssetCdn replicates to and
// fails over to, for the DR stack: it keeps what the primary bucket keeps
// (current versions; noncurrent ones StaticNoncurrentVersionDays) and lets
// CloudFront read it.
func NewAssetReplicaBucket(scope constructs.Construct, id string) *ReplicaBucket {
	return NewReplicaBucket(scope, id, ReplicaBucketProps{
		ExpireAfterDays:     StaticNoncurrentVersionDays,
		KeepCurrentVersions: true,
		ServedByCloudFront:  true,
	})
}

func NewAssetCdn(scope constructs.Construct, id string, props AssetCdnProps) *AssetCdn {
	if props.VoteStaticDir == "" || props.ResultStaticDir == "" {
		panic("AssetCdn: VoteStaticDir and ResultStaticDir are required")
	}
	if props.ReplicaBucketArn == nil || props.ReplicaBucketName == nil || props.ReplicaBucketDomainName == nil || props.ReplicaKeyArn == nil || props.ReplicaRegion == "" {
		panic("AssetCdn: ReplicaBucketArn, ReplicaBucketName, ReplicaBucketDomainName, ReplicaKeyArn and ReplicaRegion are required")
	}
	if props.LogRetentionDays < 1 {
		panic(fmt.Sprintf("AssetCdn: LogRetentionDays %v, want at least 1", props.LogRetentionDays))
	}
	scope = constructs.NewConstruct(scope, s(id))
	c := &AssetCdn{Construct: scope}
	c.LogBucket = newCdnLogBucket(scope, "Logs", props.LogRetentionDays)
	c.Bucket = newStaticBucket(scope, c.LogBucket)
	c.Deployments = deployStaticAssets(scope, c.Bucket, props.VoteStaticDir, props.ResultStaticDir, props.LogRetentionDays)
	// Replicas of these SSE-S3 objects stay SSE-S3 in the DR bucket.
	c.Replication = ReplicateBucket(scope, "Replication", c.Bucket, BucketReplicationProps{
		DestinationBucketArn:  props.ReplicaBucketArn,
		DestinationBucketName: props.ReplicaBucketName,
		DestinationKeyArn:     props.ReplicaKeyArn,
		DestinationRegion:     props.ReplicaRegion,
		AlarmAction:           props.AlarmAction,
	})

	oac := awscloudfront.NewS3OriginAccessControl(scope, s("Oac"), &awscloudfront.S3OriginAccessControlProps{
		Description: s("CloudFront reads the Ladder static bucket and its DR replica, signing with SigV4"),
		Signing:     awscloudfront.Signing_SIGV4_ALWAYS(),
	})
	// The replica belongs to the DR stack, deployed first: imported here,
	// so CDK leaves its policy alone (NewAssetReplicaBucket grants
	// CloudFront there) rather than pointing the DR stack back at this one.
	replica := awss3.Bucket_FromBucketAttributes(scope, s("Replica"), &awss3.BucketAttributes{
		BucketArn:                props.ReplicaBucketArn,
		BucketRegionalDomainName: props.ReplicaBucketDomainName,
		Region:                   s(props.ReplicaRegion),
	})
	codes := make([]*float64, len(assetFailoverCodes))
	for i := range assetFailoverCodes {
		codes[i] = &assetFailoverCodes[i]
	}
	origins := awscloudfrontorigins.NewOriginGroup(&awscloudfrontorigins.OriginGroupProps{
		PrimaryOrigin: awscloudfrontorigins.S3BucketOrigin_WithOriginAccessControl(c.Bucket, &awscloudfrontorigins.S3BucketOriginWithOACProps{
			OriginAccessControl: oac,
		}),
		FallbackOrigin: awscloudfrontorigins.S3BucketOrigin_WithOriginAccessControl(replica, &awscloudfrontorigins.S3BucketOriginWithOACProps{
			OriginAccessControl: oac,
		}),
		FallbackStatusCodes: &codes,
	})

	c.Distribution = awscloudfront.NewDistribution(scope, s("Distribution"), &awscloudfront.DistributionProps{
		Comment: s("Ladder static assets, failing over to the DR region's replica"),
		DefaultBehavior: &awscloudfront.BehaviorOptions{
			Origin:               origins,
			ViewerProtocolPolicy: awscloudfront.ViewerProtocolPolicy_REDIRECT_TO_HTTPS,
			// Origin groups fail over only GET, HEAD and OPTIONS, and the
			// assets are only ever read.
			AllowedMethods: awscloudfront.AllowedMethods_ALLOW_GET_HEAD(),
			CachedMethods:  awscloudfront.CachedMethods_CACHE_GET_HEAD(),
			CachePolicy:    newStaticCachePolicy(scope),
			// HSTS, nosniff (a stylesheet served as something else is not
			// applied), frame and referrer policies, as on the sites.
			ResponseHeadersPolicy: awscloudfront.ResponseHeadersPolicy_SECURITY_HEADERS(),
			Compress:              b(true),
		},
		HttpVersion:   awscloudfront.HttpVersion_HTTP2_AND_3,
		EnableLogging: b(true),
		LogBucket:     c.LogBucket,
		LogFilePrefix: s("cloudfront/static/"),
		// No cookie is ever meant for this host; none belongs in the logs.
		LogIncludesCookies: b(false),
	})
	suppress(c.Distribution,
		nagReason{id: "AwsSolutions-CFR1", reason: "Public static assets of a public vote (stylesheets, a script, an icon): the pages that use them are served worldwide, so are they."},
		nagReason{id: "AwsSolutions-CFR2", reason: "GET/HEAD-only, cached, versioned static files from a private bucket: nothing to inject into and nothing per user. A flood is absorbed by CloudFront's cache and Shield Standard; the sites' own distributions carry WAF where requests reach compute."},
		nagReason{id: "AwsSolutions-CFR4", reason: "Assets are fetched by the pages from CloudFront's own *.cloudfront.net name with its default certificate, whose minimum TLS version CloudFront fixes; no custom domain, so no ACM certificate to set TLSv1.2_2021 on."},
	)
	// CDK cannot add the OAC grant to an imported bucket's policy and says
	// so; NewAssetReplicaBucket makes that grant in the DR stack.
	awscdk.Annotations_Of(scope).AcknowledgeWarning(s("@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac"),
		s("The DR replica's policy (NewAssetReplicaBucket, ServedByCloudFront) lets this account's distributions read it"))

	c.URL = awscdk.Fn_Join(s(""), &[]*string{s("https://"), c.Distribution.DistributionDomainName()})
	return c
}
