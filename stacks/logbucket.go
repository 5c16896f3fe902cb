package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
)

// NewLoadBalancerLogBucket is a bucket for an ALB's access logs, kept
// retentionDays and retained with the stack. It is versioned, so Tier 4 can
// replicate it to the recovery region (replication needs versioning).
func NewLoadBalancerLogBucket(scope constructs.Construct, id string, retentionDays int) awss3.Bucket {
	bucket := awss3.NewBucket(scope, s(id), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        b(true),
		// ALB access logs can only be written with SSE-S3.
		Encryption:      awss3.BucketEncryption_S3_MANAGED,
		ObjectOwnership: awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:       b(true),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration:                          awscdk.Duration_Days(n(float64(retentionDays))),
			NoncurrentVersionExpiration:         awscdk.Duration_Days(n(1)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(n(1)),
		}},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	suppress(bucket, nagReason{
		id:     "AwsSolutions-S1",
		reason: "This bucket holds the load balancer's access logs: logging access to it into itself would log every log delivery, and into another bucket would only move the question.",
	})
	return bucket
}
