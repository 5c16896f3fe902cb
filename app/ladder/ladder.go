// Package ladder turns the app's context into stacks: it reads and validates
// the configuration once, then hands typed props to the stacks package. The
// CDK entry point (app/main.go) and the tests both build the app through
// New, so what the tests check is what `cdk synth` produces.
package ladder

import (
	"fmt"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"

	"github.com/ladder-cdk/ladder/app/config"
	"github.com/ladder-cdk/ladder/stacks"
)

// New validates app's context and adds every selected rung to app. root is
// the repository root; the voting app's images are built from root/services.
// On a configuration error nothing is added to app.
func New(app awscdk.App, root string) (*stacks.Ladder, config.Config, error) {
	ctx, _ := app.Node().GetAllContext(nil).(map[string]any)
	cfg, err := config.FromContext(ctx)
	if err != nil {
		return nil, config.Config{}, err
	}
	return stacks.NewLadder(app, Props(cfg, root)), cfg, nil
}

// Props maps the validated configuration onto the stacks' typed props.
func Props(cfg config.Config, root string) stacks.LadderProps {
	var dns *stacks.DNSProps
	if cfg.DomainName != "" {
		dns = &stacks.DNSProps{DomainName: cfg.DomainName, HostedZoneID: cfg.HostedZoneID}
	}
	return stacks.LadderProps{
		RepoRoot:      root,
		Rungs:         cfg.Rungs,
		Project:       cfg.Project,
		Account:       cfg.Account,
		PrimaryRegion: cfg.PrimaryRegion,
		DRRegion:      cfg.DRRegion,
		DNS:           dns,
		App: stacks.VoteAppProps{
			ServicesDir: filepath.Join(root, "services"),
			OptionA:     cfg.OptionA,
			OptionB:     cfg.OptionB,
		},
		AlarmEmail:          cfg.AlarmEmail,
		AllowedCIDR:         cfg.AllowedCIDR,
		LogRetention:        retention(cfg.LogRetentionDays),
		LogRetentionDays:    cfg.LogRetentionDays,
		BackupRetentionDays: cfg.BackupRetentionDays,
		Tier1InstanceType:   cfg.Tier1InstanceType,
		Tier1DataVolumeGiB:  cfg.Tier1DataVolumeGiB,

		Tier2InstanceType:     cfg.Tier2InstanceType,
		Tier2MinCapacity:      cfg.Tier2MinCapacity,
		Tier2MaxCapacity:      cfg.Tier2MaxCapacity,
		NatGateways:           cfg.NatGateways,
		DBInstanceClass:       cfg.DBInstanceClass,
		DBBackupRetentionDays: cfg.DBBackupRetentionDays,
		DeletionProtection:    cfg.DeletionProtection,

		EksApp: stacks.EksAppSizing{
			NodeInstanceType:       cfg.Tier3NodeInstanceType,
			MinNodes:               cfg.Tier3MinNodes,
			MaxNodes:               cfg.Tier3MaxNodes,
			PublicAccessCidrs:      cfg.PublicAccessCidrs(),
			AdminRoleArn:           cfg.EksAdminRoleArn,
			RedisNodeType:          cfg.RedisNodeType,
			RedisReplicas:          cfg.RedisReplicas,
			OpenSearchInstanceType: cfg.OpenSearchInstanceType,
			LogSearchRetentionDays: cfg.LogSearchRetentionDays,
		},

		Tier4Warm:           cfg.Tier4DRMode == config.Warm,
		BackupVaultLockDays: cfg.BackupVaultLockDays,
	}
}

// retention maps a validated day count onto CloudWatch Logs' enum.
func retention(days int) awslogs.RetentionDays {
	r, ok := map[int]awslogs.RetentionDays{
		1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
		7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
		60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
		150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
		400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
		1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
		2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
		3653: awslogs.RetentionDays_TEN_YEARS,
	}[days]
	if !ok {
		// config.validate accepts only the values above.
		panic(fmt.Sprintf("log retention %d days passed validation but has no CloudWatch value", days))
	}
	return r
}
