package stacks

import (
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/stacks/k8sapp"
)

// Tier4Props configure the multi-region rung: a primary region taking the
// traffic and a recovery (DR) region.
type Tier4Props struct {
	// Primary and DR are the two stacks' props (name, environment, tags).
	Primary, DR awscdk.StackProps
	RepoRoot    string
	// Warm runs the app in the DR region too (ready for Route53 to fail
	// over to); otherwise the DR region is a pilot light holding only the
	// data, and `cdk deploy -c tier4DrMode=warm` brings the app up there.
	Warm bool
	// TableName is the votes global table's fixed name.
	TableName string

	// The app's cluster, queue and logs in each region, sized as Tier 3.
	EksAppSizing
	NatGateways int

	DeletionProtection bool
	// BackupRetentionDays keeps the table's daily backups and their copies
	// in the DR region; VaultLockDays (0: none) locks both vaults.
	BackupRetentionDays int
	VaultLockDays       int

	// Health is the props of the us-east-1 stack alarming on the regions'
	// health checks (its name and tags; the region is set to us-east-1).
	Health awscdk.StackProps
	// DNS, when set, gives vote.<domain> and result.<domain> failover
	// records: the primary region's, and the DR region's when it is warm.
	DNS              *DNSProps
	App              VoteAppProps
	AlarmEmail       string
	LogRetention     awslogs.RetentionDays
	LogRetentionDays int
}

// Tier4 is "1,000,000+ users": votes in a DynamoDB global table, the app
// on EKS in the primary region (and, warm, in the DR region), Route53
// failover between the regions' load balancers, the load balancer logs
// replicated and the table's backups copied to the DR region.
//
// The DR stack is deployed first: it holds what the primary points at (the
// replica's key, the replica bucket, the DR vault), read by the primary as
// weak cross-region references. The primary makes the table and its DR
// replica, so warm DR pods become ready once the primary is deployed.
type Tier4 struct {
	Primary *Tier4Region
	DR      *Tier4Region
	// Health alarms on the regions' Route53 health checks, in us-east-1.
	Health *HealthAlarms
}

// Tier4Region is one region's stack.
type Tier4Region struct {
	awscdk.Stack
	Alarms *AlarmTopic
	// Network, App and Entry are nil in a pilot-light DR region.
	Network *Network
	App     *EksVoteApp
	Entry   *RegionalEntry

	// In the primary: the table, the replication of the load balancer's
	// logs, the table's backups (copied to the DR vault), and the pages'
	// static assets on CloudFront (replicated, failing over to the DR copy).
	Table          *VotesTable
	LogReplication *BucketReplication
	Backup         *Backup
	Assets         *AssetCdn

	// In the DR region: the replica's key, the replica buckets of the logs
	// and the static assets, the vault receiving the backup copies.
	TableKey     awskms.Key
	LogReplica   *ReplicaBucket
	AssetReplica *ReplicaBucket
	Vault        *BackupVault
}

func NewTier4(scope constructs.Construct, id string, props Tier4Props) *Tier4 {
	if props.TableName == "" || props.Primary.Env == nil || props.DR.Env == nil {
		panic("Tier 4 needs TableName and both stacks' environments")
	}
	primaryRegion, drRegion := *props.Primary.Env.Region, *props.DR.Env.Region
	lock := VaultLock{MinRetentionDays: props.VaultLockDays}

	// --- The recovery region, deployed first.
	drProps := props.DR
	drProps.CrossRegionReferences = b(true)
	drStack := awscdk.NewStack(scope, s(id+"-DR"), &drProps)
	dr := &Tier4Region{Stack: drStack}
	dr.Alarms = NewAlarmTopic(drStack, "Alarms", AlarmTopicProps{Email: props.AlarmEmail})
	dr.TableKey = NewTableReplicaKey(drStack, "TableReplicaKey")
	dr.LogReplica = NewReplicaBucket(drStack, "LoadBalancerLogReplica", ReplicaBucketProps{ExpireAfterDays: props.LogRetentionDays})
	dr.Vault = NewBackupVault(drStack, "BackupCopies", BackupVaultProps{Lock: lock})
	dr.AssetReplica = NewAssetReplicaBucket(drStack, "StaticAssetReplica")

	// --- The primary region.
	pProps := props.Primary
	pProps.CrossRegionReferences = b(true)
	pStack := awscdk.NewStack(scope, s(id), &pProps)
	p := &Tier4Region{Stack: pStack}
	p.Alarms = NewAlarmTopic(pStack, "Alarms", AlarmTopicProps{Email: props.AlarmEmail})
	// The pages' assets, for both regions' pages: one distribution, its
	// origin the primary's bucket, failing over to the DR replica.
	p.Assets = NewAssetCdn(pStack, "StaticAssets", AssetCdnProps{
		VoteStaticDir:           filepath.Join(props.App.ServicesDir, "internal/votepage/static"),
		ResultStaticDir:         filepath.Join(props.App.ServicesDir, "internal/resultpage/static"),
		ReplicaBucketArn:        dr.AssetReplica.Bucket.BucketArn(),
		ReplicaBucketName:       dr.AssetReplica.Bucket.BucketName(),
		ReplicaBucketDomainName: dr.AssetReplica.Bucket.BucketRegionalDomainName(),
		ReplicaKeyArn:           dr.AssetReplica.Key.KeyArn(),
		ReplicaRegion:           drRegion,
		LogRetentionDays:        float64(props.LogRetentionDays),
		AlarmAction:             p.Alarms.Action,
	})
	if props.Warm {
		// The DR pages serve their assets from their own pods: naming the
		// primary's distribution would make the DR stack, which the
		// primary reads, read the primary in turn (a cycle), and in a
		// failover the DR region should not need anything made in the
		// failed one.
		dr.runApp(props, id+"-DR", drRegion, awsroute53.Failover_SECONDARY, VotesTableArn(props.TableName, drRegion), dr.TableKey.KeyArn(), nil)
	}

	p.Table = NewVotesTable(pStack, "Votes", VotesTableProps{
		TableName:          props.TableName,
		ReplicaRegions:     []string{drRegion},
		ReplicaKeyArns:     map[string]*string{drRegion: dr.TableKey.KeyArn()},
		DeletionProtection: props.DeletionProtection,
		AlarmAction:        p.Alarms.Action,
	})
	p.runApp(props, id, primaryRegion, awsroute53.Failover_PRIMARY, p.Table.TableArnIn(primaryRegion), p.Table.Key.KeyArn(), p.Assets.URL)
	// A page naming a new asset hash is served only once the asset is in
	// the bucket.
	for _, m := range p.App.Manifests {
		for _, d := range p.Assets.Deployments {
			m.Node().AddDependency(d)
		}
	}
	// The pods' table is the one made here: no pod starts before it.
	for _, m := range p.App.Manifests {
		m.Node().AddDependency(p.Table.Table)
	}
	p.LogReplication = ReplicateBucket(pStack, "LoadBalancerLogReplication", p.Entry.LogBucket, BucketReplicationProps{
		DestinationBucketArn:  dr.LogReplica.Bucket.BucketArn(),
		DestinationBucketName: dr.LogReplica.Bucket.BucketName(),
		DestinationKeyArn:     dr.LogReplica.Key.KeyArn(),
		DestinationRegion:     drRegion,
		AlarmAction:           p.Alarms.Action,
	})
	// The global table already has a live copy in the DR region; the
	// backups are for what replication cannot undo (a bad write or delete
	// replicates too): daily, kept BackupRetentionDays, copied to the DR
	// vault, on top of the table's 35 days of point-in-time recovery.
	p.Backup = NewBackup(pStack, "Backup", BackupProps{
		RetentionDays:  props.BackupRetentionDays,
		Resources:      []*string{p.Table.Table.TableArn()},
		CopyToVaultArn: dr.Vault.Vault.BackupVaultArn(),
		Lock:           lock,
	})
	pStack.AddStackDependency(drStack, s("the replica key, the replica bucket and the backup vault the primary points at"))

	checks := []RegionHealth{{Region: primaryRegion, HealthCheckID: p.Entry.HealthCheck.HealthCheckId()}}
	if dr.Entry != nil {
		checks = append(checks, RegionHealth{Region: drRegion, HealthCheckID: dr.Entry.HealthCheck.HealthCheckId()})
	}
	health := NewHealthAlarms(scope, id+"-HealthAlarms", HealthAlarmsProps{
		StackProps: props.Health,
		Checks:     checks,
		AlarmEmail: props.AlarmEmail,
	})

	output := func(stack awscdk.Stack, id string, value *string, description string) {
		awscdk.NewCfnOutput(stack, s(id), &awscdk.CfnOutputProps{Value: value, Description: s(description)})
	}
	output(pStack, "TableName", s(props.TableName), "The votes global table (replica in "+drRegion+")")
	output(drStack, "Mode", s(map[bool]string{true: "warm", false: "pilot-light"}[props.Warm]),
		"How this recovery region runs (tier4DrMode); README, Tier 4 runbook")
	return &Tier4{Primary: p, DR: dr, Health: health}
}

// runApp puts the voting app in this region: a network, the app on EKS
// (Tier 3's) with the DynamoDB store, and the region's load balancer,
// health check and failover records.
func (r *Tier4Region) runApp(props Tier4Props, clusterName, region string, failover awsroute53.Failover, tableArn, tableKeyArn, staticBaseURL *string) {
	stack := r.Stack
	what := "Tier 4 (" + region + ")"
	r.Network = NewNetwork(stack, "Network", NetworkProps{
		MaxAzs:           max(2, props.NatGateways),
		NatGateways:      props.NatGateways,
		PrivateSubnets:   true,
		IsolatedSubnets:  true,
		ServiceEndpoints: true,
		FlowLogRetention: props.LogRetention,
	})
	vpc := r.Network.Vpc
	var entry *RegionalEntry
	r.App = NewEksVoteApp(stack, EksVoteAppProps{
		RepoRoot:     props.RepoRoot,
		Vpc:          vpc,
		Private:      &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
		Isolated:     &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		ClusterName:  clusterName,
		EksAppSizing: props.EksAppSizing,
		App:          props.App,
		LogRetention: props.LogRetention,
		AlarmAction:  r.Alarms.Action,
		What:         what,
		Backend: func(app *k8sapp.AppProps) {
			app.Store = k8sapp.StoreDynamoDB
			app.DynamoDBTable = props.TableName
			// One region's workers write at a time (the table's writer
			// flag, the primary until someone moves it): two regions
			// counting into the same tally item would lose increments.
			app.DefaultWriterRegion = *props.Primary.Env.Region
			if staticBaseURL != nil {
				app.StaticBaseURL = *staticBaseURL
			}
		},
		Grant: func(_, worker, result awsiam.IRole) {
			GrantVotesTable(worker, tableArn, tableKeyArn, region)
			GrantVotesTableRead(result, tableArn, tableKeyArn, region)
		},
		Entry: func(app *k8sapp.AppProps, eks *EksCluster) {
			entry = NewRegionalEntry(stack, "Entry", RegionalEntryProps{
				Vpc:                vpc,
				PodsSecurityGroup:  eks.Cluster.ClusterSecurityGroup(),
				DNS:                props.DNS,
				Failover:           failover,
				SetIdentifier:      region,
				LogRetentionDays:   props.LogRetentionDays,
				LogRetention:       props.LogRetention,
				DeletionProtection: props.DeletionProtection,
				AlarmAction:        r.Alarms.Action,
				What:               what,
			})
			app.TargetGroups = &k8sapp.TargetGroupArns{
				Vote:     *entry.VoteTargets.TargetGroupArn(),
				Result:   *entry.ResultTargets.TargetGroupArn(),
				Revision: entry.TargetGroupRevision,
			}
		},
	})
	r.Entry = entry

	output := func(id string, value *string, description string) {
		awscdk.NewCfnOutput(stack, s(id), &awscdk.CfnOutputProps{Value: value, Description: s(description)})
	}
	cluster := r.App.Eks.Cluster
	output("ClusterName", cluster.ClusterName(), "The EKS cluster in "+region)
	output("KubeconfigCommand", awscdk.Fn_Join(s(""), &[]*string{
		s("aws eks update-kubeconfig --name "), cluster.ClusterName(), s(" --region "), stack.Region(),
	}), "Adds the cluster to ~/.kube/config (needs an access entry: eksAdminRoleArn)")
	output("VoteUrl", entry.VoteURL, "The vote page"+map[bool]string{true: " (Route53 sends it to the healthy region)", false: " in this region"}[props.DNS != nil])
	output("ResultUrl", entry.ResultURL, "The live result page")
	output("LoadBalancerDnsName", entry.LoadBalancer.LoadBalancerDnsName(), "This region's load balancer (its own name; curl it to check this region alone)")
	output("HealthCheckId", entry.HealthCheck.HealthCheckId(), "The Route53 health check that decides this region's failover")
}
