package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticache"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
)

// RedisCacheProps size and place the in-memory store between vote and
// worker.
type RedisCacheProps struct {
	Vpc awsec2.IVpc
	// Subnets hold the nodes: private or isolated subnets in at least two
	// AZs (the primary and its replica never share one).
	Subnets *awsec2.SubnetSelection
	// NodeType is an ElastiCache node type; empty means cache.t4g.medium.
	NodeType string
	// Replicas is the number of read replicas (the failover targets); at
	// least 1, because Multi-AZ with automatic failover needs one.
	Replicas int
	// SnapshotRetentionDays keeps daily snapshots; 0 means 1 (see
	// NewRedisCache for why a day is enough).
	SnapshotRetentionDays int
	// LogRetention is how long the slow log and engine log are kept; empty
	// means one month.
	LogRetention awslogs.RetentionDays
	// What names the rung in descriptions ("Tier 3"); empty means "Ladder".
	What string
}

// RedisCache is a Valkey replication group (cluster mode disabled): a
// primary and replicas in other AZs, Multi-AZ with automatic failover, TLS
// required, encrypted at rest with its own key, AUTH token generated into
// Secrets Manager. Nothing may connect until AllowFrom lets a security
// group in.
type RedisCache struct {
	constructs.Construct
	ReplicationGroup awselasticache.CfnReplicationGroup
	// AuthSecret holds the AUTH token alone (a plain string, not JSON): the
	// services read it as REDIS_PASSWORD_FILE.
	AuthSecret    awssecretsmanager.Secret
	SecurityGroup awsec2.SecurityGroup
	// Key encrypts the data at rest and the snapshots.
	Key awskms.Key
	// PrimaryHost is the primary endpoint's name, which follows a failover.
	PrimaryHost *string
	// ReaderHost is the reader endpoint (spreads reads over the replicas).
	ReaderHost *string
	Port       float64
	// LogGroups are the slow log and the engine log, in that order.
	LogGroups []awslogs.LogGroup
}

// cachePort is the standard Redis/Valkey port, which the services' REDIS_URL
// examples use.
const cachePort = 6379

// Valkey rather than Redis OSS: the same protocol and commands (go-redis and
// the services' queue work unchanged), ElastiCache prices Valkey nodes about
// 20% below Redis OSS ones, and Valkey is the engine ElastiCache keeps
// developing (its Redis OSS line stops at 7.1). Pinned to a major.minor so an
// upgrade is a reviewed template change.
const (
	cacheEngine        = "valkey"
	cacheEngineVersion = "8.2"
)

func NewRedisCache(scope constructs.Construct, id string, props RedisCacheProps) *RedisCache {
	c := constructs.NewConstruct(scope, s(id))
	what := props.What
	if what == "" {
		what = "Ladder"
	}
	if props.Replicas < 1 {
		panic("RedisCacheProps.Replicas must be at least 1: the replica in another AZ is the failover target")
	}
	nodeType := props.NodeType
	if nodeType == "" {
		nodeType = "cache.t4g.medium"
	}
	retentionDays := props.SnapshotRetentionDays
	if retentionDays == 0 {
		// The store holds votes in flight (seconds' worth between vote and
		// worker); the durable record is Aurora. A snapshot is for recovering
		// the queue after an operator's mistake on the same day; an older one
		// would only re-deliver votes long since counted.
		retentionDays = 1
	}

	// A customer key, retained: snapshots (and the final one left by a
	// delete) stay readable after the stack is gone, and can be shared.
	key := awskms.NewKey(c, s("Key"), &awskms.KeyProps{
		Description:       s("Encrypts the " + what + " Valkey replication group's data at rest and its snapshots"),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})

	// The AUTH token: 64 letters and digits (ElastiCache forbids some
	// punctuation in tokens, and 64 alphanumerics are ~380 bits). The
	// template only carries a {{resolve:secretsmanager:...}} reference that
	// CloudFormation resolves when it calls ElastiCache.
	secret := awssecretsmanager.NewSecret(c, s("AuthToken"), &awssecretsmanager.SecretProps{
		Description: s("AUTH token of the " + what + " Valkey replication group (REDIS_PASSWORD_FILE)"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     n(64),
			ExcludePunctuation: b(true),
			IncludeSpace:       b(false),
		},
		// Kept with the key and the snapshots: whoever restores one can
		// still read the token the data was written under.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	suppress(secret, nagReason{
		id:     "AwsSolutions-SMG4",
		reason: "Secrets Manager has no rotation function for ElastiCache AUTH tokens; rotating one is a two-step ModifyReplicationGroup (AuthTokenUpdateStrategy ROTATE, then SET) with the pods re-reading the file in between, done by an operator. Only the services that need it can read it.",
	})

	// No ingress until AllowFrom; the nodes never open connections, so no
	// egress either.
	sg := awsec2.NewSecurityGroup(c, s("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      s(what + " Valkey replication group: clients on 6379 only"),
		AllowAllOutbound: b(false),
	})

	selected := props.Vpc.SelectSubnets(props.Subnets)
	subnetIDs := []any{}
	for _, id := range *selected.SubnetIds {
		subnetIDs = append(subnetIDs, id)
	}
	subnetGroup := awselasticache.NewCfnSubnetGroup(c, s("Subnets"), &awselasticache.CfnSubnetGroupProps{
		Description: s(what + " Valkey replication group"),
		SubnetIds:   &subnetIDs,
	})

	retention := retentionOr(props.LogRetention)
	slowLog := awslogs.NewLogGroup(c, s("SlowLog"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	engineLog := awslogs.NewLogGroup(c, s("EngineLog"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	logDelivery := func(typ string, g awslogs.LogGroup) *awselasticache.CfnReplicationGroup_LogDeliveryConfigurationRequestProperty {
		return &awselasticache.CfnReplicationGroup_LogDeliveryConfigurationRequestProperty{
			LogType:         s(typ),
			LogFormat:       s("json"),
			DestinationType: s("cloudwatch-logs"),
			DestinationDetails: &awselasticache.CfnReplicationGroup_DestinationDetailsProperty{
				CloudWatchLogsDetails: &awselasticache.CfnReplicationGroup_CloudWatchLogsDestinationDetailsProperty{
					LogGroup: g.LogGroupName(),
				},
			},
		}
	}

	// The subnet group spans at least two AZs; with Multi-AZ on,
	// ElastiCache puts the replicas in other AZs than the primary. The AZs
	// are not pinned (PreferredCacheClusterAZs): CloudFormation can only set
	// that property at creation, so pinning would make a change of Replicas
	// replace the whole group.
	if azs := *selected.AvailabilityZones; len(azs) < 2 {
		panic(fmt.Sprintf("RedisCacheProps.Subnets must span at least two AZs for Multi-AZ, got %d", len(azs)))
	}
	nodes := 1 + props.Replicas

	rg := awselasticache.NewCfnReplicationGroup(c, s("ReplicationGroup"), &awselasticache.CfnReplicationGroupProps{
		ReplicationGroupDescription: s(what + " vote queue between vote and worker"),
		Engine:                      s(cacheEngine),
		EngineVersion:               s(cacheEngineVersion),
		CacheNodeType:               s(nodeType),
		NumCacheClusters:            n(float64(nodes)),
		MultiAzEnabled:              b(true),
		AutomaticFailoverEnabled:    b(true),
		Port:                        n(cachePort),
		CacheSubnetGroupName:        subnetGroup.Ref(),
		SecurityGroupIds:            ss(*sg.SecurityGroupId()),
		// TLS is required (not "preferred"): a client without it cannot
		// connect at all, and the AUTH token never crosses the wire in clear.
		TransitEncryptionEnabled: b(true),
		TransitEncryptionMode:    s("required"),
		AtRestEncryptionEnabled:  b(true),
		KmsKeyId:                 key.KeyArn(),
		AuthToken:                secret.SecretValue().UnsafeUnwrap(),
		SnapshotRetentionLimit:   n(float64(retentionDays)),
		// 03:00-04:00 UTC like the database's backups; the maintenance
		// window follows it.
		SnapshotWindow:             s("03:00-04:00"),
		PreferredMaintenanceWindow: s("sun:04:30-sun:05:30"),
		AutoMinorVersionUpgrade:    b(true),
		LogDeliveryConfigurations: &[]any{
			logDelivery("slow-log", slowLog),
			logDelivery("engine-log", engineLog),
		},
	})
	// Deleting the stack, or a change that replaces the group, leaves a
	// final snapshot (CloudFormation's Snapshot policy; the replication group
	// has no FinalSnapshotIdentifier property of its own).
	rg.ApplyRemovalPolicy(awscdk.RemovalPolicy_SNAPSHOT, nil)

	suppress(rg, nagReason{
		id:     "AwsSolutions-AEC5",
		reason: "The standard port 6379: only the security groups let in by AllowFrom (the EKS nodes) may connect, TLS and an AUTH token are required, so a non-default port would hide nothing.",
	})

	return &RedisCache{
		Construct:        c,
		ReplicationGroup: rg,
		AuthSecret:       secret,
		SecurityGroup:    sg,
		Key:              key,
		PrimaryHost:      rg.AttrPrimaryEndPointAddress(),
		ReaderHost:       rg.AttrReaderEndPointAddress(),
		Port:             cachePort,
		LogGroups:        []awslogs.LogGroup{slowLog, engineLog},
	}
}

// AllowFrom lets peer's security group connect on 6379 (and nothing else
// in).
func (c *RedisCache) AllowFrom(peer awsec2.IConnectable) {
	c.SecurityGroup.Connections().AllowFrom(peer, awsec2.Port_Tcp(n(cachePort)), s("Valkey clients (TLS + AUTH)"))
}
