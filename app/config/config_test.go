package config

import (
	"strings"
	"testing"
)

func TestDefaultsAreValid(t *testing.T) {
	c, err := FromContext(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Project != "Ladder" || c.OptionA != "Cats" || c.OptionB != "Dogs" || c.StackName("Tier1") != "Ladder-Tier1" {
		t.Errorf("defaults = %+v", c)
	}
	if len(c.Rungs) != len(Rungs) {
		t.Errorf("by default every rung synthesizes: got %v", c.Rungs)
	}
}

func TestOverrides(t *testing.T) {
	c, err := FromContext(map[string]any{
		"tier": "1", "project": "Vote", "domainName": "Ladder.Example.com.", "hostedZoneId": "Z123ABC",
		"account": "123456789012", "primaryRegion": "eu-west-1", "drRegion": "eu-central-1",
		"tier1InstanceType": "m7g.large", "tier1DataVolumeGiB": 50.0, "optionA": "Tabs", "optionB": "Spaces",
		"alarmEmail": "ops@example.com", "allowedCidr": "198.51.100.0/24", "logRetentionDays": "90",
		"backupRetentionDays": 35.0,
		"tier2InstanceType":   "c7g.large", "tier2MinCapacity": 3.0, "tier2MaxCapacity": "12", "natGateways": 3.0,
		"dbInstanceClass": "db.R7G.large", "dbBackupRetentionDays": 14.0, "deletionProtection": false,
		// Keys of CDK and the CLI are not ours and pass through.
		"@aws-cdk/core:newStyleStackSynthesis": true, "aws:cdk:bundling-stacks": []any{}, "cli-telemetry": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.DomainName != "ladder.example.com" || c.Tier1DataVolumeGiB != 50 || c.LogRetentionDays != 90 || c.StackName("Tier1") != "Vote-Tier1" {
		t.Errorf("got %+v", c)
	}
	if c.Tier2InstanceType != "c7g.large" || c.Tier2MinCapacity != 3 || c.Tier2MaxCapacity != 12 || c.NatGateways != 3 ||
		c.DBInstanceClass != "r7g.large" || c.DBBackupRetentionDays != 14 || c.DeletionProtection {
		t.Errorf("Tier 2 settings: got %+v", c)
	}
}

// Tier 2's defaults are its specification: two instances in two AZs, one NAT
// gateway (cost), a week of database backups, deletion protection on.
func TestTier2Defaults(t *testing.T) {
	c := Defaults()
	if c.Tier2InstanceType != "t4g.small" || c.Tier2MinCapacity != 2 || c.Tier2MaxCapacity != 6 || c.NatGateways != 1 ||
		c.DBInstanceClass != "t4g.medium" || c.DBBackupRetentionDays != 7 || !c.DeletionProtection {
		t.Errorf("Tier 2 defaults = %+v", c)
	}
	if c, err := FromContext(map[string]any{"deletionProtection": "FALSE"}); err != nil || c.DeletionProtection {
		t.Errorf("deletionProtection=FALSE: %+v, %v", c.DeletionProtection, err)
	}
}

// Each bad value fails with a message naming its key and saying what is
// wanted; the table is the specification of the messages.
func TestInvalidValues(t *testing.T) {
	for _, c := range []struct {
		ctx  map[string]any
		want []string
	}{
		{map[string]any{"tier": "5"}, []string{"tier:", `unknown rung "5"`, "rungs 1"}},
		{map[string]any{"tier": "one"}, []string{"tier:", `unknown rung "one"`}},
		{map[string]any{"project": "my_ladder"}, []string{"project:", "letters, digits or hyphens"}},
		{map[string]any{"domainName": "not a domain", "hostedZoneId": "Z123"}, []string{"domainName:", "not a valid domain name"}},
		{map[string]any{"domainName": "ladder.example.com"}, []string{"hostedZoneId:", "required when domainName is set"}},
		{map[string]any{"hostedZoneId": "Z123"}, []string{"domainName:", "required when hostedZoneId is set"}},
		{map[string]any{"domainName": "a.example.com", "hostedZoneId": "zone-1"}, []string{"hostedZoneId:", "not a Route53 hosted zone id"}},
		{map[string]any{"account": "12345"}, []string{"account:", "12-digit"}},
		{map[string]any{"primaryRegion": "us-west-3"}, []string{"primaryRegion:", "not an AWS region", `did you mean "us-west-1"`}},
		{map[string]any{"drRegion": "eu-wst-1"}, []string{"drRegion:", `did you mean "eu-west-1"`}},
		{map[string]any{"drRegion": "us-west-2"}, []string{"drRegion:", "must differ from primaryRegion"}},
		{map[string]any{"tier1InstanceType": "t3.small"}, []string{"tier1InstanceType:", "not a Graviton"}},
		{map[string]any{"tier1InstanceType": "huge"}, []string{"tier1InstanceType:", "not an EC2 instance type"}},
		{map[string]any{"tier1DataVolumeGiB": "2"}, []string{"tier1DataVolumeGiB:", "between 8 and 16384"}},
		{map[string]any{"tier1DataVolumeGiB": 10.5}, []string{"tier1DataVolumeGiB:", "not a whole number"}},
		{map[string]any{"optionA": "<script>"}, []string{"optionA:", "1-40 letters"}},
		{map[string]any{"optionA": "Dogs"}, []string{"optionB:", "must differ from optionA"}},
		{map[string]any{"alarmEmail": "ops at example"}, []string{"alarmEmail:", "not a plain e-mail address"}},
		{map[string]any{"allowedCidr": "10.0.0.1/8"}, []string{"allowedCidr:", `did you mean "10.0.0.0/8"`}},
		{map[string]any{"allowedCidr": "anywhere"}, []string{"allowedCidr:", "not an IPv4 CIDR"}},
		{map[string]any{"logRetentionDays": "10"}, []string{"logRetentionDays:", "not a CloudWatch Logs retention"}},
		{map[string]any{"backupRetentionDays": "0"}, []string{"backupRetentionDays:", "between 1 and"}},
		{map[string]any{"tier2InstanceType": "m5.large"}, []string{"tier2InstanceType:", "not a Graviton"}},
		{map[string]any{"tier2MinCapacity": 1.0}, []string{"tier2MinCapacity:", "between 2 and 100", "two AZs"}},
		{map[string]any{"tier2MinCapacity": 10.0}, []string{"tier2MaxCapacity:", "must be above tier2MinCapacity (10)"}},
		{map[string]any{"tier2MinCapacity": "4", "tier2MaxCapacity": "3"}, []string{"tier2MaxCapacity:", "must be above tier2MinCapacity (4)"}},
		{map[string]any{"tier2MinCapacity": "4", "tier2MaxCapacity": "4"}, []string{"tier2MaxCapacity:", "rolling update"}},
		{map[string]any{"tier2MaxCapacity": "1000"}, []string{"tier2MaxCapacity:", "at most 100"}},
		{map[string]any{"natGateways": "0"}, []string{"natGateways:", "must be 1, 2 or 3"}},
		{map[string]any{"natGateways": "4"}, []string{"natGateways:", "must be 1, 2 or 3"}},
		{map[string]any{"natGateways": "3"}, []string{"natGateways:", "3 needs account set"}},
		{map[string]any{"dbInstanceClass": "r5.large"}, []string{"dbInstanceClass:", "not a Graviton Aurora PostgreSQL class"}},
		{map[string]any{"dbInstanceClass": "t4g.small"}, []string{"dbInstanceClass:", "not a Graviton Aurora PostgreSQL class"}},
		{map[string]any{"dbBackupRetentionDays": "3"}, []string{"dbBackupRetentionDays:", "between 7 and 35"}},
		{map[string]any{"dbBackupRetentionDays": "36"}, []string{"dbBackupRetentionDays:", "between 7 and 35"}},
		{map[string]any{"deletionProtection": "yes"}, []string{"deletionProtection:", `"yes" is not true or false`}},
		{map[string]any{"domianName": "x.example.com"}, []string{"domianName: unknown context key", `did you mean "domainName"`}},
		{map[string]any{"colour": "blue"}, []string{"colour: unknown context key", "known keys:"}},
		{map[string]any{"optionA": map[string]any{"x": 1}}, []string{"optionA:", "unsupported value"}},
	} {
		_, err := FromContext(c.ctx)
		if err == nil {
			t.Errorf("%v: want an error", c.ctx)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error lacks %q:\n%v", c.ctx, w, err)
			}
		}
	}
}
