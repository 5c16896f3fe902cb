package stacks

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// LadderProps is the validated configuration, as the stacks need it.
type LadderProps struct {
	// RepoRoot is the repository's absolute path: Lambda handlers are built
	// from RepoRoot/lambda-src/<name>.
	RepoRoot      string
	Rungs         []int
	Project       string
	Account       string
	PrimaryRegion string
	DRRegion      string
	DNS           *DNSProps
	App           VoteAppProps
	AlarmEmail    string
	AllowedCIDR   string
	LogRetention  awslogs.RetentionDays
	// LogRetentionDays is LogRetention as a day count, for S3 log lifecycles.
	LogRetentionDays    int
	BackupRetentionDays int

	Tier1InstanceType  string
	Tier1DataVolumeGiB int

	Tier2InstanceType                  string
	Tier2MinCapacity, Tier2MaxCapacity int
	NatGateways                        int
	DBInstanceClass                    string
	DBBackupRetentionDays              int
	DeletionProtection                 bool

	// EksApp sizes the app on EKS (Tier 3, and Tier 4 in each region).
	EksApp EksAppSizing

	// Tier4Warm runs the app in the DR region too (tier4DrMode=warm).
	Tier4Warm           bool
	BackupVaultLockDays int
}

// Ladder is every stack the selected rungs need, by stack name.
type Ladder struct {
	Stacks map[string]awscdk.Stack
}

// NewLadder adds the selected rungs to the app and puts every stack under
// cdk-nag's AWS Solutions checks, so a finding fails the tests and `cdk synth`.
func NewLadder(app constructs.Construct, props LadderProps) *Ladder {
	l := &Ladder{Stacks: map[string]awscdk.Stack{}}
	env := func(region string) *awscdk.Environment {
		e := &awscdk.Environment{Region: s(region)}
		if props.Account != "" {
			e.Account = s(props.Account)
		}
		return e
	}
	stackPropsIn := func(region, name, description string) awscdk.StackProps {
		return awscdk.StackProps{
			StackName:   s(name),
			Env:         env(region),
			Description: s(description),
			Tags:        &map[string]*string{"ladder:project": s(props.Project)},
		}
	}
	stackProps := func(name, description string) awscdk.StackProps {
		return stackPropsIn(props.PrimaryRegion, name, description)
	}
	for _, rung := range props.Rungs {
		switch rung {
		case 1:
			name := props.Project + "-Tier1"
			t := NewTier1(app, name, Tier1Props{
				StackProps:          stackProps(name, "Ladder Tier 1 (100+ users): Route53 -> one EC2 box running the voting app, Redis and PostgreSQL"),
				InstanceType:        props.Tier1InstanceType,
				DataVolumeGiB:       props.Tier1DataVolumeGiB,
				AllowedCIDR:         props.AllowedCIDR,
				DNS:                 props.DNS,
				App:                 props.App,
				AlarmEmail:          props.AlarmEmail,
				LogRetention:        props.LogRetention,
				BackupRetentionDays: props.BackupRetentionDays,
			})
			l.Stacks[name] = t.Stack
		case 2:
			name := props.Project + "-Tier2"
			// CloudFront takes its certificate and web ACL from us-east-1 only.
			edge := NewEdge(app, name+"-Edge", EdgeProps{
				StackProps:   stackProps(name+"-Edge", "Ladder Tier 2 edge (us-east-1): WAF web ACL and the CloudFront certificate of the Tier 2 sites"),
				DNS:          props.DNS,
				LogRetention: props.LogRetention,
			})
			t := NewTier2(app, name, Tier2Props{
				StackProps:            stackProps(name, "Ladder Tier 2 (10,000+ users): CloudFront + WAF -> ALB -> Auto Scaling group over two AZs -> Aurora PostgreSQL Multi-AZ"),
				RepoRoot:              props.RepoRoot,
				InstanceType:          props.Tier2InstanceType,
				MinCapacity:           props.Tier2MinCapacity,
				MaxCapacity:           props.Tier2MaxCapacity,
				NatGateways:           props.NatGateways,
				DBInstanceClass:       props.DBInstanceClass,
				DBBackupRetentionDays: props.DBBackupRetentionDays,
				DeletionProtection:    props.DeletionProtection,
				DNS:                   props.DNS,
				WebAclArn:             edge.WebAclArn,
				Certificate:           edge.Certificate,
				App:                   props.App,
				AlarmEmail:            props.AlarmEmail,
				LogRetention:          props.LogRetention,
				LogRetentionDays:      props.LogRetentionDays,
			})
			t.AddStackDependency(edge.Stack, s("the web ACL and certificate CloudFront uses"))
			// CloudFront's metrics exist only in us-east-1, and so must the
			// alarms on them; they read the distributions from this rung.
			edgeAlarms := NewEdgeAlarms(app, name+"-EdgeAlarms", EdgeAlarmsProps{
				StackProps: stackProps(name+"-EdgeAlarms", "Ladder Tier 2 edge alarms (us-east-1): CloudFront 5xx rate and origin latency of the Tier 2 sites"),
				Sites:      t.Cdn.Sites(),
				AlarmEmail: props.AlarmEmail,
			})
			edgeAlarms.AddStackDependency(t.Stack, s("the distributions it watches"))
			l.Stacks[name+"-Edge"] = edge.Stack
			l.Stacks[name] = t.Stack
			l.Stacks[name+"-EdgeAlarms"] = edgeAlarms.Stack
		case 3:
			name := props.Project + "-Tier3"
			t := NewTier3(app, name, Tier3Props{
				StackProps:            stackProps(name, "Ladder Tier 3 (100,000+ users): ALB -> EKS on Graviton (vote, worker, result) -> Valkey queue and Aurora PostgreSQL; pod logs to OpenSearch"),
				RepoRoot:              props.RepoRoot,
				EksAppSizing:          props.EksApp,
				NatGateways:           props.NatGateways,
				DBInstanceClass:       props.DBInstanceClass,
				DBBackupRetentionDays: props.DBBackupRetentionDays,
				DeletionProtection:    props.DeletionProtection,
				DNS:                   props.DNS,
				App:                   props.App,
				AlarmEmail:            props.AlarmEmail,
				LogRetention:          props.LogRetention,
			})
			l.Stacks[name] = t.Stack
		case 4:
			name := props.Project + "-Tier4"
			drMode := "pilot light: the data only"
			if props.Tier4Warm {
				drMode = "warm: the data and the app"
			}
			t := NewTier4(app, name, Tier4Props{
				Primary:             stackPropsIn(props.PrimaryRegion, name, "Ladder Tier 4 (1,000,000+ users), primary region: Route53 failover -> ALB -> EKS (vote, worker, result) -> Valkey queue and a DynamoDB global table; logs replicated and backups copied to "+props.DRRegion),
				DR:                  stackPropsIn(props.DRRegion, name+"-DR", "Ladder Tier 4 recovery region ("+drMode+"): the table replica's key, the log and asset replica buckets, the backup copy vault"),
				Health:              stackPropsIn(EdgeRegion, name+"-HealthAlarms", "Ladder Tier 4 health alarms (us-east-1): the Route53 health checks of the regions, where Route53 publishes them"),
				RepoRoot:            props.RepoRoot,
				Warm:                props.Tier4Warm,
				TableName:           strings.ToLower(props.Project) + "-tier4-votes",
				EksAppSizing:        props.EksApp,
				NatGateways:         props.NatGateways,
				DeletionProtection:  props.DeletionProtection,
				BackupRetentionDays: props.BackupRetentionDays,
				VaultLockDays:       props.BackupVaultLockDays,
				DNS:                 props.DNS,
				App:                 props.App,
				AlarmEmail:          props.AlarmEmail,
				LogRetention:        props.LogRetention,
				LogRetentionDays:    props.LogRetentionDays,
			})
			l.Stacks[name+"-DR"] = t.DR.Stack
			l.Stacks[name] = t.Primary.Stack
			l.Stacks[name+"-HealthAlarms"] = t.Health.Stack
		}
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: b(true)}), nil)
	return l
}
