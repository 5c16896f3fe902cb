package stacks

import (
	"fmt"

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
	//
	// A DynamoDB table is covered by AWSBackupServiceRolePolicyForBackup,
	// but copying its recovery points to another region (CopyToVaultArn)
	// needs AWS Backup's "advanced features for Amazon DynamoDB backups",
	// an account setting per region that CloudFormation cannot set: run
	// `aws backup update-region-settings --resource-type-management-preference DynamoDB=true`
	// in the source region once. Without it the copy job of the table fails.
	Resources []*string
	// CopyToVaultArn, when set, copies every recovery point to that vault
	// (the DR region's, NewBackupVault there): a region's loss does not take
	// its backups with it.
	CopyToVaultArn *string
	// CopyRetentionDays is how long the copies are kept (0: RetentionDays).
	CopyRetentionDays int
	// Lock, when MinRetentionDays > 0, locks this rung's vault (see VaultLock).
	Lock VaultLock
}

// VaultLock configures AWS Backup Vault Lock on a vault: recovery points
// cannot be deleted, nor their retention shortened, below MinRetentionDays.
//
// Without ComplianceAfterDays the lock is in governance mode: a principal
// allowed backup:DeleteBackupVaultLockConfiguration can still remove it,
// so a mistaken retention can be corrected. That is the default. With
// ComplianceAfterDays (at least 3, AWS's minimum grace time) it becomes a
// compliance-mode lock that can be changed or removed only during that
// many days after it is set; after that it is IMMUTABLE: nobody, not even
// the root user or AWS, can delete the locked recovery points early or the
// vault itself while it holds any. Use only when a regulation asks for it.
type VaultLock struct {
	// MinRetentionDays is the shortest retention a recovery point in the
	// vault may have (0: no lock). Must not exceed the retention of what
	// lands there, or those backup/copy jobs fail.
	MinRetentionDays int
	// ComplianceAfterDays, when > 0, makes the lock compliance mode after
	// this grace time.
	ComplianceAfterDays int
}

func (l VaultLock) config(what string) *awsbackup.LockConfiguration {
	if l.MinRetentionDays < 0 || l.ComplianceAfterDays < 0 {
		panic(fmt.Sprintf("%s: vault lock days cannot be negative", what))
	}
	if l.MinRetentionDays == 0 {
		if l.ComplianceAfterDays > 0 {
			panic(fmt.Sprintf("%s: ComplianceAfterDays needs MinRetentionDays", what))
		}
		return nil
	}
	lc := &awsbackup.LockConfiguration{MinRetention: awscdk.Duration_Days(n(float64(l.MinRetentionDays)))}
	if l.ComplianceAfterDays > 0 {
		if l.ComplianceAfterDays < 3 {
			panic(fmt.Sprintf("%s: ComplianceAfterDays must be at least 3 (AWS Backup's minimum grace time)", what))
		}
		lc.ChangeableFor = awscdk.Duration_Days(n(float64(l.ComplianceAfterDays)))
	}
	return lc
}

// BackupVaultProps configure a stand-alone vault (the DR region's).
type BackupVaultProps struct {
	Lock VaultLock
}

// BackupVault is an encrypted vault that outlives its stack, with its own
// key; the DR stack holds one as the target of the primary's copy rule.
type BackupVault struct {
	constructs.Construct
	Vault awsbackup.BackupVault
	Key   awskms.Key
}

func NewBackupVault(scope constructs.Construct, id string, props BackupVaultProps) *BackupVault {
	c := constructs.NewConstruct(scope, s(id))
	key, vault := newVault(c, "Encrypts the copies of recovery points in this backup vault", props.Lock.config("BackupVault "+id))
	return &BackupVault{Construct: c, Vault: vault, Key: key}
}

// newVault makes the retained, rotating key and the retained vault it
// encrypts, as "Key" and "Vault" in c.
func newVault(c constructs.Construct, keyDescription string, lock *awsbackup.LockConfiguration) (awskms.Key, awsbackup.BackupVault) {
	key := awskms.NewKey(c, s("Key"), &awskms.KeyProps{
		Description:       s(keyDescription),
		EnableKeyRotation: b(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	vault := awsbackup.NewBackupVault(c, s("Vault"), &awsbackup.BackupVaultProps{
		EncryptionKey:     key,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		LockConfiguration: lock,
	})
	return key, vault
}

// Backup is a daily AWS Backup plan into an encrypted vault that outlives
// the stack, so deleting a rung never deletes its recovery points.
type Backup struct {
	constructs.Construct
	Vault awsbackup.BackupVault
	Plan  awsbackup.BackupPlan
}

func NewBackup(scope constructs.Construct, id string, props BackupProps) *Backup {
	lock := props.Lock.config("Backup " + id)
	if props.Lock.MinRetentionDays > props.RetentionDays {
		panic(fmt.Sprintf("Backup %s: the vault lock's MinRetentionDays (%d) exceeds RetentionDays (%d); every backup job would fail", id, props.Lock.MinRetentionDays, props.RetentionDays))
	}
	c := constructs.NewConstruct(scope, s(id))
	_, vault := newVault(c, "Encrypts the backup vault's recovery points", lock)
	var copies *[]*awsbackup.BackupPlanCopyActionProps
	if props.CopyToVaultArn != nil {
		days := props.CopyRetentionDays
		if days == 0 {
			days = props.RetentionDays
		}
		copies = &[]*awsbackup.BackupPlanCopyActionProps{{
			DestinationBackupVault: awsbackup.BackupVault_FromBackupVaultArn(c, s("CopyVault"), props.CopyToVaultArn),
			DeleteAfter:            awscdk.Duration_Days(n(float64(days))),
		}}
	}
	plan := awsbackup.NewBackupPlan(c, s("Plan"), &awsbackup.BackupPlanProps{
		// Plan names are unique per account and region, and CDK would use
		// the bare construct id ("Plan") for every rung's plan: Tier 1's
		// and Tier 4's, in the same region, would collide on deploy
		// (aws/aws-cdk#38318). The construct path makes it the rung's own.
		BackupPlanName: awscdk.Names_UniqueResourceName(c, &awscdk.UniqueResourceNameOptions{
			MaxLength:                n(50),
			AllowedSpecialCharacters: s("-_."),
		}),
		BackupVault: vault,
		BackupPlanRules: &[]awsbackup.BackupPlanRule{
			awsbackup.NewBackupPlanRule(&awsbackup.BackupPlanRuleProps{
				RuleName: s("Daily"),
				// 03:00 UTC, the quiet hour for most audiences of a demo app.
				ScheduleExpression: awsevents.Schedule_Cron(&awsevents.CronOptions{Hour: s("3"), Minute: s("0")}),
				StartWindow:        awscdk.Duration_Hours(n(1)),
				CompletionWindow:   awscdk.Duration_Hours(n(4)),
				DeleteAfter:        awscdk.Duration_Days(n(float64(props.RetentionDays))),
				CopyActions:        copies,
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
