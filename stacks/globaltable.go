package stacks

import (
	"fmt"
	"sort"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
)

// VotesTableProps configure the votes global table (Tier 4).
type VotesTableProps struct {
	// TableName is fixed: the DR region's compute must know it before the
	// primary stack (which creates the table) exists.
	TableName string
	// ReplicaRegions are the other regions holding a replica (the DR one).
	ReplicaRegions []string
	// ReplicaKeyArns gives, for every replica region, the ARN of the KMS key
	// encrypting the replica there (NewTableReplicaKey in that region's
	// stack; a weak cross-region reference). A KMS key is regional, so each
	// replica needs its own.
	ReplicaKeyArns map[string]*string
	// DeletionProtection guards the table and every replica against
	// DeleteTable (the configuration defaults it to true).
	DeletionProtection bool
	// AlarmAction, when set, is notified by the table's alarms.
	AlarmAction awscloudwatch.IAlarmAction
}

// VotesTable is the services' DynamoDB store (services/internal/store/
// dynamodb.go): one global table, partition key "pk" (S) and no sort key,
// written in one region at a time (Route53 failover) and replicated to the
// others by DynamoDB.
type VotesTable struct {
	constructs.Construct
	Table     awsdynamodb.TableV2
	TableName string
	// Key encrypts the table in this (the primary) region.
	Key awskms.Key
	// Alarms are the table's alarms (empty without an AlarmAction).
	Alarms []awscloudwatch.Alarm

	region      string
	replicaKeys map[string]*string
}

// NewTableReplicaKey is the customer managed key that encrypts the votes
// table's replica in the stack's region; the DR stack creates it and the
// primary's VotesTableProps.ReplicaKeyArns names it. Retained: a deleted key
// would make the replica (and its backups) unreadable.
func NewTableReplicaKey(scope constructs.Construct, id string) awskms.Key {
	return awskms.NewKey(scope, s(id), &awskms.KeyProps{
		Description:       s("Encrypts this region's replica of the votes DynamoDB global table"),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
}

// VotesTableArn is the ARN of the votes table's replica in a region, built
// from its fixed name: usable in any stack without a reference to the one
// that creates the table (the partition and account resolve in the stack
// using it).
func VotesTableArn(tableName, region string) *string {
	return awscdk.Fn_Join(s(""), &[]*string{
		s("arn:"), awscdk.Aws_PARTITION(), s(":dynamodb:" + region + ":"), awscdk.Aws_ACCOUNT_ID(), s(":table/" + tableName),
	})
}

// votesTableActions are the DynamoDB API calls the services make (store/
// dynamodb.go): consistent GetItem of voter and shard items, conditional
// UpdateItem for every write (conditions are part of UpdateItem, not a
// separate ConditionCheckItem), and one BatchGetItem of the tally shards.
// No PutItem, DeleteItem, Query or transactions. Recount's Scan is for
// tests and operators and is deliberately not granted to the services.
var votesTableActions = []string{"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"}

// votesTableReadActions are the reads alone: the result service only ever
// reads the tally shards.
var votesTableReadActions = []string{"dynamodb:GetItem", "dynamodb:BatchGetItem"}

// GrantVotesTable gives a principal what the services need on the votes
// table in ONE region: the calls above on that region's table, and use of
// that region's table key through DynamoDB only. DynamoDB reads the
// table's key with the caller's permissions (its key policy documents
// principals authorized to use DynamoDB calling through
// kms:ViaService dynamodb.<region>.amazonaws.com); Decrypt and
// DescribeKey are what CDK's own read/write grants on a CMK table give
// for the data plane, so nothing more is granted (no Encrypt or
// GenerateDataKey: DynamoDB encrypts with the table key it unwraps).
func GrantVotesTable(grantee awsiam.IGrantable, tableArn, keyArn *string, region string) awsiam.Grant {
	return grantVotesTable(grantee, tableArn, keyArn, region, votesTableActions)
}

// GrantVotesTableRead is GrantVotesTable without UpdateItem: a public,
// read-only page (result) cannot change a tally even if it is taken over.
func GrantVotesTableRead(grantee awsiam.IGrantable, tableArn, keyArn *string, region string) awsiam.Grant {
	return grantVotesTable(grantee, tableArn, keyArn, region, votesTableReadActions)
}

func grantVotesTable(grantee awsiam.IGrantable, tableArn, keyArn *string, region string, actions []string) awsiam.Grant {
	g := awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      ss(actions...),
		ResourceArns: &[]*string{tableArn},
	})
	k := awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      ss("kms:Decrypt", "kms:DescribeKey"),
		ResourceArns: &[]*string{keyArn},
		Conditions: &map[string]*map[string]any{
			"StringEquals": {"kms:ViaService": "dynamodb." + region + ".amazonaws.com"},
		},
	})
	return g.Combine(k)
}

func NewVotesTable(scope constructs.Construct, id string, props VotesTableProps) *VotesTable {
	if props.TableName == "" {
		panic("VotesTable: TableName is required (the DR compute names the table before it exists)")
	}
	c := constructs.NewConstruct(scope, s(id))
	region := *awscdk.Stack_Of(c).Region()
	if *awscdk.Token_IsUnresolved(s(region)) {
		panic("VotesTable: the stack needs a concrete region (replicas are named by region)")
	}
	key := awskms.NewKey(c, s("Key"), &awskms.KeyProps{
		Description:       s("Encrypts the votes DynamoDB global table in its primary region"),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	pitr := &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: b(true)}
	regions := append([]string(nil), props.ReplicaRegions...)
	sort.Strings(regions)
	replicas := make([]*awsdynamodb.ReplicaTableProps, 0, len(regions))
	keys := map[string]*string{}
	for _, r := range regions {
		arn := props.ReplicaKeyArns[r]
		if arn == nil {
			panic(fmt.Sprintf("VotesTable: no ReplicaKeyArns entry for replica region %s", r))
		}
		if r == region {
			panic(fmt.Sprintf("VotesTable: replica region %s is the table's own region", r))
		}
		keys[r] = arn
		// PITR and deletion protection are per replica (never synchronized
		// across a global table), so each replica sets them itself.
		replicas = append(replicas, &awsdynamodb.ReplicaTableProps{
			Region:                           s(r),
			PointInTimeRecoverySpecification: pitr,
			DeletionProtection:               b(props.DeletionProtection),
		})
	}
	table := awsdynamodb.NewTableV2(c, s("Table"), &awsdynamodb.TablePropsV2{
		TableName:    s(props.TableName),
		PartitionKey: &awsdynamodb.Attribute{Name: s("pk"), Type: awsdynamodb.AttributeType_STRING},
		// On-demand: vote traffic is spiky and small; no capacity to tune.
		Billing:                          awsdynamodb.Billing_OnDemand(nil),
		PointInTimeRecoverySpecification: pitr,
		DeletionProtection:               b(props.DeletionProtection),
		// Global tables replicate through the table's stream (CloudFormation
		// requires NEW_AND_OLD_IMAGES as soon as there is a replica). Set
		// explicitly so it stays when replicas change and a later stream
		// consumer finds both images.
		DynamoStream: awsdynamodb.StreamViewType_NEW_AND_OLD_IMAGES,
		Encryption:   awsdynamodb.TableEncryptionV2_CustomerManagedKey(key, &keys),
		// The DeletionPolicy of AWS::DynamoDB::GlobalTable covers every
		// replica: on stack deletion the whole global table is kept. CDK
		// 2.276's TableV2 has no per-replica removal policy (the
		// retainTableReplica flag is for the old Table's custom resource);
		// dropping a region from ReplicaRegions WOULD delete that replica,
		// which its deletion protection then refuses.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		Replicas:      &replicas,
	})
	v := &VotesTable{Construct: c, Table: table, TableName: props.TableName, Key: key, region: region, replicaKeys: keys}
	if props.AlarmAction != nil {
		v.alarms(regions, props.AlarmAction)
	}
	return v
}

// TableArnIn is the ARN of the table (or its replica) in a region.
func (v *VotesTable) TableArnIn(region string) *string { return VotesTableArn(v.TableName, region) }

// KeyArnIn is the ARN of the key encrypting the table in a region.
func (v *VotesTable) KeyArnIn(region string) *string {
	if region == v.region {
		return v.Key.KeyArn()
	}
	if k := v.replicaKeys[region]; k != nil {
		return k
	}
	panic(fmt.Sprintf("VotesTable: no replica in %s", region))
}

// Grant gives a principal the services' access to the table in one region
// (see GrantVotesTable; a stack that cannot reference this one, such as the
// DR stack, calls GrantVotesTable with VotesTableArn and its replica key).
func (v *VotesTable) Grant(grantee awsiam.IGrantable, region string) awsiam.Grant {
	return GrantVotesTable(grantee, v.TableArnIn(region), v.KeyArnIn(region), region)
}

func (v *VotesTable) alarms(regions []string, action awscloudwatch.IAlarmAction) {
	five := awscdk.Duration_Minutes(n(5))
	alarm := func(id, what string, metric awscloudwatch.IMetric, threshold, periods float64) {
		a := awscloudwatch.NewAlarm(v.Construct, s(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   s(what),
			Metric:             metric,
			Threshold:          n(threshold),
			EvaluationPeriods:  n(periods),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			// No requests, no datapoints: quiet is healthy.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		v.Alarms = append(v.Alarms, a)
	}
	// Replication normally takes a second or two. An average above 60 s for
	// 15 minutes means the replica (the DR copy) is materially behind, so a
	// failover now would lose that much; short regional blips do not page.
	for _, r := range regions {
		alarm("ReplicationLatency"+sanitizeID(r), "Votes table replication to "+r+" averages over 60 s: the DR replica is falling behind",
			awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:     s("AWS/DynamoDB"),
				MetricName:    s("ReplicationLatency"),
				DimensionsMap: &map[string]*string{"TableName": s(v.TableName), "ReceivingRegion": s(r)},
				Statistic:     s("Average"),
				Period:        five,
			}), 60000, 3)
	}
	ops := &[]awsdynamodb.Operation{awsdynamodb.Operation_GET_ITEM, awsdynamodb.Operation_BATCH_GET_ITEM, awsdynamodb.Operation_UPDATE_ITEM}
	// On-demand throttles only past twice the previous peak or the
	// per-partition limit (a hot shard item); the SDK retries, so only a
	// sustained count matters.
	alarm("Throttles", "Votes table requests are being throttled",
		v.Table.MetricThrottledRequestsForOperations(&awsdynamodb.OperationsMetricOptions{Operations: ops, Period: five}), 10, 2)
	alarm("SystemErrors", "DynamoDB returns server errors (HTTP 500) for the votes table",
		v.Table.MetricSystemErrorsForOperations(&awsdynamodb.SystemErrorsForOperationsMetricOptions{Operations: ops, Period: five}), 0, 2)
}

// sanitizeID turns a region into a construct id fragment (us-west-2 -> UsWest2).
func sanitizeID(v string) string {
	out := make([]byte, 0, len(v))
	up := true
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch == '-' {
			up = true
			continue
		}
		if up && ch >= 'a' && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		up = false
		out = append(out, ch)
	}
	return string(out)
}
