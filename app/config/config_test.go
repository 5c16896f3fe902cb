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
		{map[string]any{"tier3NodeInstanceType": "m7i.large"}, []string{"tier3NodeInstanceType:", "not a Graviton"}},
		{map[string]any{"tier4DrMode": "cold"}, []string{"tier4DrMode:", `"cold" must be "pilot-light"`, `or "warm"`}},
		{map[string]any{"backupVaultLockDays": "-1"}, []string{"backupVaultLockDays:", "between 0 (no lock) and backupRetentionDays (14)"}},
		{map[string]any{"backupVaultLockDays": "15"}, []string{"backupVaultLockDays:", "refuses recovery points that expire sooner"}},
		{map[string]any{"tier3MinNodes": "1"}, []string{"tier3MinNodes:", "between 2 and 100", "two AZs"}},
		{map[string]any{"tier3MinNodes": "4", "tier3MaxNodes": "3"}, []string{"tier3MaxNodes:", "at least tier3MinNodes (4)"}},
		{map[string]any{"tier3MaxNodes": "101"}, []string{"tier3MaxNodes:", "at most 100"}},
		{map[string]any{"tier3MaxNodes": "six"}, []string{"tier3MaxNodes:", "not a whole number"}},
		{map[string]any{"eksPublicAccessCidrs": "203.0.113.0/24,office"}, []string{"eksPublicAccessCidrs:", `"office" is not an IPv4 CIDR`}},
		{map[string]any{"eksPublicAccessCidrs": "203.0.113.7/24"}, []string{"eksPublicAccessCidrs:", `did you mean "203.0.113.0/24"`}},
		{map[string]any{"eksPublicAccessCidrs": "2001:db8::/32"}, []string{"eksPublicAccessCidrs:", "not an IPv4 CIDR"}},
		{map[string]any{"eksPublicAccessCidrs": strings.Repeat("10.0.0.0/8,", 41)}, []string{"eksPublicAccessCidrs:", "at most 40"}},
		{map[string]any{"eksAdminRoleArn": "arn:aws:iam::123456789012:user/alice"}, []string{"eksAdminRoleArn:", "not an IAM role ARN"}},
		{map[string]any{"redisNodeType": "cache.m5.large"}, []string{"redisNodeType:", "not a Graviton ElastiCache node type"}},
		{map[string]any{"redisNodeType": "t4g.medium"}, []string{"redisNodeType:", "not a Graviton ElastiCache node type"}},
		{map[string]any{"redisReplicas": "0"}, []string{"redisReplicas:", "between 1 and 5", "failover"}},
		{map[string]any{"openSearchInstanceType": "t3.small.search"}, []string{"openSearchInstanceType:", "not a Graviton OpenSearch"}},
		{map[string]any{"openSearchInstanceType": "m7g.large"}, []string{"openSearchInstanceType:", "not a Graviton OpenSearch"}},
		{map[string]any{"logSearchRetentionDays": "0"}, []string{"logSearchRetentionDays:", "between 1 and 3650"}},
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

// Tier 3's defaults are its specification: two Graviton nodes in two AZs
// (up to six), a Valkey primary with one replica, OpenSearch on Graviton,
// two weeks of searchable pod logs, and the public API endpoint open to
// allowedCidr unless eksPublicAccessCidrs says otherwise.
func TestTier3Defaults(t *testing.T) {
	c := Defaults()
	if c.Tier3NodeInstanceType != "m7g.large" || c.Tier3MinNodes != 2 || c.Tier3MaxNodes != 6 ||
		c.RedisNodeType != "cache.t4g.medium" || c.RedisReplicas != 1 ||
		c.OpenSearchInstanceType != "m7g.large.search" || c.LogSearchRetentionDays != 14 || c.EksAdminRoleArn != "" {
		t.Errorf("Tier 3 defaults = %+v", c)
	}
	if got := c.PublicAccessCidrs(); len(got) != 1 || got[0] != c.AllowedCIDR {
		t.Errorf("default public access CIDRs = %v, want [allowedCidr]", got)
	}
}

func TestTier3Overrides(t *testing.T) {
	for _, tc := range []struct {
		ctx   map[string]any
		check func(Config) bool
	}{
		{map[string]any{"tier3NodeInstanceType": "c7g.xlarge", "tier3MinNodes": 3.0, "tier3MaxNodes": "3"},
			func(c Config) bool {
				return c.Tier3NodeInstanceType == "c7g.xlarge" && c.Tier3MinNodes == 3 && c.Tier3MaxNodes == 3
			}},
		{map[string]any{"eksPublicAccessCidrs": " 203.0.113.0/24, 198.51.100.7/32 ", "allowedCidr": "192.0.2.0/24"},
			func(c Config) bool {
				p := c.PublicAccessCidrs()
				return len(p) == 2 && p[0] == "203.0.113.0/24" && p[1] == "198.51.100.7/32"
			}},
		{map[string]any{"allowedCidr": "192.0.2.0/24"},
			func(c Config) bool { p := c.PublicAccessCidrs(); return len(p) == 1 && p[0] == "192.0.2.0/24" }},
		{map[string]any{"eksAdminRoleArn": "arn:aws:iam::123456789012:role/path/Admin"},
			func(c Config) bool { return c.EksAdminRoleArn == "arn:aws:iam::123456789012:role/path/Admin" }},
		{map[string]any{"redisNodeType": "CACHE.R7G.LARGE", "redisReplicas": "2"},
			func(c Config) bool { return c.RedisNodeType == "cache.r7g.large" && c.RedisReplicas == 2 }},
		{map[string]any{"openSearchInstanceType": "r7g.large.search", "logSearchRetentionDays": 30.0},
			func(c Config) bool {
				return c.OpenSearchInstanceType == "r7g.large.search" && c.LogSearchRetentionDays == 30
			}},
	} {
		c, err := FromContext(tc.ctx)
		if err != nil {
			t.Errorf("%v: %v", tc.ctx, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("%v: got %+v", tc.ctx, c)
		}
	}
}

func TestTier4Settings(t *testing.T) {
	d := Defaults()
	if d.Tier4DRMode != PilotLight || d.BackupVaultLockDays != 0 {
		t.Errorf("defaults: tier4DrMode %q, backupVaultLockDays %d; want pilot-light and no lock", d.Tier4DRMode, d.BackupVaultLockDays)
	}
	c, err := FromContext(map[string]any{"tier4DrMode": "WARM", "backupVaultLockDays": 7.0, "backupRetentionDays": "30"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tier4DRMode != Warm || c.BackupVaultLockDays != 7 {
		t.Errorf("got tier4DrMode %q, backupVaultLockDays %d", c.Tier4DRMode, c.BackupVaultLockDays)
	}
}
