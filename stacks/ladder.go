package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// LadderProps is the validated configuration, as the stacks need it.
type LadderProps struct {
	// RepoRoot is the repository's absolute path: Lambda handlers are built
	// from RepoRoot/lambda-src/<name>.
	RepoRoot            string
	Rungs               []int
	Project             string
	Account             string
	PrimaryRegion       string
	DRRegion            string
	DNS                 *DNSProps
	App                 VoteAppProps
	AlarmEmail          string
	AllowedCIDR         string
	LogRetention        awslogs.RetentionDays
	BackupRetentionDays int

	Tier1InstanceType  string
	Tier1DataVolumeGiB int
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
	stackProps := func(name, description string) awscdk.StackProps {
		return awscdk.StackProps{
			StackName:   s(name),
			Env:         env(props.PrimaryRegion),
			Description: s(description),
			Tags:        &map[string]*string{"ladder:project": s(props.Project)},
		}
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
		}
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: b(true)}), nil)
	return l
}
