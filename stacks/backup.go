package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsbackup"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
)

// BackupProps sets how long a rung's daily recovery points are kept.
type BackupProps struct {
	RetentionDays int
	// Resources are the ARNs of what is backed up (volumes, clusters, ...).
	Resources []*string
}

// Backup is a daily AWS Backup plan into an encrypted vault that outlives
// the stack, so deleting a rung never deletes its recovery points.
type Backup struct {
	constructs.Construct
	Vault awsbackup.BackupVault
	Plan  awsbackup.BackupPlan
}

func NewBackup(scope constructs.Construct, id string, props BackupProps) *Backup {
	c := constructs.NewConstruct(scope, s(id))
	key := awskms.NewKey(c, s("Key"), &awskms.KeyProps{
		Description:       s("Encrypts the backup vault's recovery points"),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	vault := awsbackup.NewBackupVault(c, s("Vault"), &awsbackup.BackupVaultProps{
		EncryptionKey: key,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	plan := awsbackup.NewBackupPlan(c, s("Plan"), &awsbackup.BackupPlanProps{
		BackupVault: vault,
		BackupPlanRules: &[]awsbackup.BackupPlanRule{
			awsbackup.NewBackupPlanRule(&awsbackup.BackupPlanRuleProps{
				RuleName: s("Daily"),
				// 03:00 UTC, the quiet hour for most audiences of a demo app.
				ScheduleExpression: awsevents.Schedule_Cron(&awsevents.CronOptions{Hour: s("3"), Minute: s("0")}),
				StartWindow:        awscdk.Duration_Hours(n(1)),
				CompletionWindow:   awscdk.Duration_Hours(n(4)),
				DeleteAfter:        awscdk.Duration_Days(n(float64(props.RetentionDays))),
			}),
		},
	})
	resources := make([]awsbackup.BackupResource, 0, len(props.Resources))
	for _, arn := range props.Resources {
		resources = append(resources, awsbackup.BackupResource_FromArn(arn))
	}
	sel := plan.AddSelection(s("Selection"), &awsbackup.BackupSelectionOptions{Resources: &resources})
	suppress(sel, nagReason{
		id:        "AwsSolutions-IAM4",
		reason:    "AWSBackupServiceRolePolicyForBackup is the service role policy AWS Backup documents for taking backups; it is scoped by the selection to the listed resources.",
		appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"},
	})
	return &Backup{Construct: c, Vault: vault, Plan: plan}
}
