package stacks

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
)

// DatabaseProps size and place a rung's Aurora PostgreSQL cluster.
type DatabaseProps struct {
	Vpc awsec2.IVpc
	// Subnets hold the instances: isolated subnets, no route out.
	Subnets *awsec2.SubnetSelection
	// RotationSubnets hold the password rotation function, which calls the
	// database and the Secrets Manager API at its regional name (through an
	// interface endpoint with private DNS, or NAT).
	RotationSubnets *awsec2.SubnetSelection
	// InstanceClass is a Graviton class without "db." (t4g.medium, r7g.large).
	InstanceClass string
	// Readers is the number of reader instances, each in another AZ than the
	// writer (round robin over the VPC's AZs); a reader is also the failover
	// target, so Multi-AZ needs at least one.
	Readers int
	// DatabaseName is created with the cluster; Username owns it.
	DatabaseName, Username string
	// BackupRetentionDays keeps automated backups (point-in-time restore).
	BackupRetentionDays int
	// DeletionProtection makes a delete fail until it is turned off; either
	// way a delete leaves a final snapshot.
	DeletionProtection bool
	// AlarmAction, when set, is notified by the cluster's alarms (CPU,
	// freeable memory, replica lag).
	AlarmAction awscloudwatch.IAlarmAction
	// What names the database in descriptions and alarms ("Tier 2").
	What string
}

// Database is an Aurora PostgreSQL cluster, a writer and readers in other
// AZs, encrypted with its own key, TLS only, with a generated master
// password that Secrets Manager rotates. Tier 2 uses it and Tier 3 will.
//
// It owns the alarms that only depend on the database (CPU, freeable memory,
// replica lag), so every rung that has it gets them the same way.
type Database struct {
	constructs.Construct
	Cluster awsrds.DatabaseCluster
	// Secret is the RDS secret (JSON: username, password, host, port, dbname)
	// of the cluster's owner role.
	Secret      awssecretsmanager.ISecret
	Port        float64
	Connections awsec2.Connections
	Key         awskms.Key
	// Alarms are the cluster's alarms (empty without an AlarmAction).
	Alarms []awscloudwatch.Alarm
}

// The engine is pinned to a minor version, so an upgrade is a reviewed
// template change; Aurora still applies patch releases in the maintenance
// window.
var auroraEngine = awsrds.AuroraPostgresEngineVersion_VER_16_9

const postgresPort = 5432

func NewDatabase(scope constructs.Construct, id string, props DatabaseProps) *Database {
	c := constructs.NewConstruct(scope, s(id))
	if props.Readers < 1 {
		panic("DatabaseProps.Readers must be at least 1: the reader in another AZ is the failover target")
	}
	memGiB, ok := auroraMemoryGiB(props.InstanceClass)
	if !ok {
		panic(fmt.Sprintf("DatabaseProps.InstanceClass %q is not a Graviton Aurora class", props.InstanceClass))
	}

	// A customer key: snapshots (and the final one) can be shared or copied
	// only with it, and it outlives the stack so they stay readable.
	key := awskms.NewKey(c, s("Key"), &awskms.KeyProps{
		Description:       s(fmt.Sprintf("Encrypts the %s Aurora cluster's storage and snapshots", props.What)),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})

	azs := *props.Vpc.AvailabilityZones()
	instanceType := awsec2.NewInstanceType(s(props.InstanceClass))
	instance := func(id string, i int) awsrds.IClusterInstance {
		return awsrds.ClusterInstance_Provisioned(s(id), &awsrds.ProvisionedClusterInstanceProps{
			InstanceType: instanceType,
			// Pinned AZs: the writer and each reader never share one.
			AvailabilityZone:   azs[i%len(azs)],
			PubliclyAccessible: b(false),
			CaCertificate:      awsrds.CaCertificate_RDS_CA_RSA2048_G1(),
		})
	}
	readers := make([]awsrds.IClusterInstance, props.Readers)
	for i := range readers {
		readers[i] = instance(fmt.Sprintf("Reader%d", i+1), i+1)
	}
	cluster := awsrds.NewDatabaseCluster(c, s("Cluster"), &awsrds.DatabaseClusterProps{
		Engine: awsrds.DatabaseClusterEngine_AuroraPostgres(&awsrds.AuroraPostgresClusterEngineProps{
			Version: auroraEngine(),
		}),
		Credentials:          awsrds.Credentials_FromGeneratedSecret(s(props.Username), nil),
		DefaultDatabaseName:  s(props.DatabaseName),
		Writer:               instance("Writer", 0),
		Readers:              &readers,
		Vpc:                  props.Vpc,
		VpcSubnets:           props.Subnets,
		Port:                 n(postgresPort),
		StorageEncrypted:     b(true),
		StorageEncryptionKey: key,
		// Clients must use TLS; the hosts verify the server's certificate.
		Parameters: &map[string]*string{"rds.force_ssl": s("1")},
		Backup: &awsrds.BackupProps{
			Retention: awscdk.Duration_Days(n(float64(props.BackupRetentionDays))),
			// 03:00-04:00 UTC, like Tier 1's AWS Backup window.
			PreferredWindow: s("03:00-04:00"),
		},
		PreferredMaintenanceWindow: s("sun:04:30-sun:05:30"),
		CopyTagsToSnapshot:         b(true),
		DeletionProtection:         b(props.DeletionProtection),
		// Deleting the stack (or replacing the cluster) leaves a final snapshot.
		RemovalPolicy: awscdk.RemovalPolicy_SNAPSHOT,
	})
	secret := cluster.Secret()
	// The credentials outlive the cluster: a cluster restored from its final
	// snapshot still has the password last stored here. (Secret() is the
	// attachment; the secret itself is the cluster's child "Secret".)
	cluster.Node().FindChild(s("Secret")).(awscdk.IResource).ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN)
	cluster.AddRotationSingleUser(&awsrds.RotationSingleUserOptions{
		AutomaticallyAfter: awscdk.Duration_Days(n(30)),
		VpcSubnets:         props.RotationSubnets,
	})

	suppress(cluster, nagReason{
		id:     "AwsSolutions-RDS6",
		reason: "The app authenticates with the Secrets Manager password, rotated every 30 days and read at run time; IAM tokens would need the services to sign a token per connection, which they do not. Enable iamAuthentication here when a rung's clients do.",
	}, nagReason{
		id:     "AwsSolutions-RDS11",
		reason: "The standard PostgreSQL port: only the app's, the migration function's and the rotation function's security groups may connect, so a non-default port would hide nothing.",
	})

	if !props.DeletionProtection {
		suppress(cluster, nagReason{
			id:     "AwsSolutions-RDS10",
			reason: "Deletion protection was turned off on purpose (deletionProtection=false, e.g. a short-lived test deployment); a delete still leaves a final snapshot (RemovalPolicy SNAPSHOT).",
		})
	}

	d := &Database{
		Construct:   c,
		Cluster:     cluster,
		Secret:      secret,
		Port:        postgresPort,
		Connections: cluster.Connections(),
		Key:         key,
	}
	if props.AlarmAction != nil {
		d.alarms(props, memGiB)
	}
	return d
}

// alarms: each one means the database is about to hurt the app.
func (d *Database) alarms(props DatabaseProps, memGiB float64) {
	alarm := func(id, what string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, periods float64, missing awscloudwatch.TreatMissingData) {
		a := awscloudwatch.NewAlarm(d.Construct, s(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   s(props.What + " database: " + what),
			Metric:             metric,
			Threshold:          n(threshold),
			ComparisonOperator: op,
			EvaluationPeriods:  n(periods),
			TreatMissingData:   missing,
		})
		a.AddAlarmAction(props.AlarmAction)
		a.AddOkAction(props.AlarmAction)
		d.Alarms = append(d.Alarms, a)
	}
	fiveMin := awscdk.Duration_Minutes(n(5))
	alarm("CpuAlarm", "CPU above 80% for 15 minutes: scale the instance class up (dbInstanceClass).",
		d.Cluster.MetricCPUUtilization(&awscloudwatch.MetricOptions{Statistic: s("Maximum"), Period: fiveMin}),
		80, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 3, awscloudwatch.TreatMissingData_MISSING)
	// 10% of an instance's memory: below it PostgreSQL's caches are being
	// squeezed and the next step is swapping.
	alarm("FreeableMemoryAlarm", fmt.Sprintf("an instance has less than %.0f MiB freeable memory (10%% of %.0f GiB) for 15 minutes.", memGiB*1024*0.1, memGiB),
		d.Cluster.MetricFreeableMemory(&awscloudwatch.MetricOptions{Statistic: s("Minimum"), Period: fiveMin}),
		memGiB*0.1*1024*1024*1024, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 3, awscloudwatch.TreatMissingData_MISSING)
	// The result page reads its tallies from the reader endpoint: more than
	// a second behind, a voter would see a stale total after reloading.
	alarm("ReplicaLagAlarm", "a reader is more than 1 s behind the writer for 5 minutes: the result page's reads are stale.",
		d.Cluster.Metric(s("AuroraReplicaLagMaximum"), &awscloudwatch.MetricOptions{Statistic: s("Maximum"), Period: awscdk.Duration_Minutes(n(1))}),
		1000, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 5, awscloudwatch.TreatMissingData_NOT_BREACHING)
}

var auroraClassRe = regexp.MustCompile(`^(t4g|r[678]g)\.(medium|large|([0-9]*)xlarge)$`)

// auroraMemoryGiB is the memory of a Graviton Aurora class, for the freeable
// memory alarm: t4g.medium 4, t4g.large 8, r*g.large 16, doubling per size.
func auroraMemoryGiB(class string) (float64, bool) {
	m := auroraClassRe.FindStringSubmatch(class)
	if m == nil {
		return 0, false
	}
	switch {
	case m[1] == "t4g" && m[2] == "medium":
		return 4, true
	case m[1] == "t4g" && m[2] == "large":
		return 8, true
	case m[1] == "t4g" || m[2] == "medium":
		return 0, false
	case m[2] == "large":
		return 16, true
	case m[3] == "":
		return 32, true
	}
	k, err := strconv.Atoi(m[3])
	if err != nil || k < 1 {
		return 0, false
	}
	return 32 * float64(k), true
}

// VotesDatabaseProps size the voting app's Aurora database.
type VotesDatabaseProps struct {
	RepoRoot            string
	Vpc                 awsec2.IVpc
	InstanceClass       string
	BackupRetentionDays int
	DeletionProtection  bool
	AlarmAction         awscloudwatch.IAlarmAction
	LogRetention        awslogs.RetentionDays
	// What names the rung in descriptions ("Tier 2").
	What string
}

// NewVotesDatabase is the voting app's Aurora PostgreSQL as Tiers 2 and 3
// run it: a writer and a reader in the isolated subnets, rotation in the
// private ones, and the schema applied by the db-migrate custom resource
// before anything uses it. Both are made directly in the stack ("Database",
// "DbMigrate"), so their logical ids are the rungs' own.
func NewVotesDatabase(stack awscdk.Stack, props VotesDatabaseProps) (*Database, *DBMigrate) {
	private := &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
	db := NewDatabase(stack, "Database", DatabaseProps{
		Vpc:                 props.Vpc,
		Subnets:             &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		RotationSubnets:     private,
		InstanceClass:       props.InstanceClass,
		Readers:             1,
		DatabaseName:        dbName,
		Username:            dbUser,
		BackupRetentionDays: props.BackupRetentionDays,
		DeletionProtection:  props.DeletionProtection,
		AlarmAction:         props.AlarmAction,
		What:                props.What,
	})
	migration := NewDBMigrate(stack, "DbMigrate", DBMigrateProps{
		RepoRoot:     props.RepoRoot,
		Vpc:          props.Vpc,
		VpcSubnets:   private,
		Secret:       db.Secret,
		Database:     db.Cluster,
		Port:         db.Port,
		DatabaseName: dbName,
		LogRetention: props.LogRetention,
	})
	return db, migration
}
