package test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
)

// Tier 1, "100+ users": one Graviton box running the voting app, Redis and
// PostgreSQL; one box, but no data lost with it and no one let in.

func TestTier1_BoxIsGravitonAmazonLinux2023WithIMDSv2(t *testing.T) {
	tpl := defaults.template(t, tier1)
	check(t, "instance type and SSM-resolved AMI", func() {
		tpl.HasResourceProperties(str("AWS::EC2::Instance"), obj(map[string]any{
			"InstanceType": "t4g.small",
			"ImageId":      obj(map[string]any{"Ref": assertions.Match_StringLikeRegexp(str("al2023amikernel.*arm64"))}),
		}))
	})
	params, _ := defaults.templates[tier1]["Parameters"].(map[string]any)
	found := false
	for _, p := range params {
		if d, _ := p.(map[string]any)["Default"].(string); strings.Contains(d, "/al2023-ami-kernel") && strings.HasSuffix(d, "arm64") {
			found = true
		}
	}
	if !found {
		t.Errorf("no SSM parameter for the arm64 Amazon Linux 2023 AMI among %v", params)
	}
	check(t, "IMDSv2 required", func() {
		tpl.HasResourceProperties(str("AWS::EC2::LaunchTemplate"), obj(map[string]any{
			"LaunchTemplateData": obj(map[string]any{"MetadataOptions": obj(map[string]any{"HttpTokens": "required"})}),
		}))
	})
}

func TestTier1_EveryVolumeIsEncryptedGP3(t *testing.T) {
	_, box := defaults.only(t, tier1, "AWS::EC2::Instance")
	bdms := asList(props(box)["BlockDeviceMappings"])
	if len(bdms) == 0 {
		t.Fatal("the box has no block device mappings: its root volume would be unencrypted")
	}
	for _, m := range bdms {
		ebs, _ := m.(map[string]any)["Ebs"].(map[string]any)
		if ebs["Encrypted"] != true || ebs["VolumeType"] != "gp3" {
			t.Errorf("root volume %v: want encrypted gp3", m)
		}
	}
	for id, v := range defaults.resources(t, tier1, "AWS::EC2::Volume") {
		if props(v)["Encrypted"] != true || props(v)["VolumeType"] != "gp3" {
			t.Errorf("volume %s: want encrypted gp3, got %v", id, props(v))
		}
	}
}

func TestTier1_OnlyVoteAndResultPortsAreOpen_NeverSSH(t *testing.T) {
	for _, c := range []struct {
		s    *synthesized
		cidr string
	}{{defaults, "0.0.0.0/0"}, {full, "203.0.113.0/24"}} {
		var open []string
		for id, sg := range c.s.resources(t, tier1, "AWS::EC2::SecurityGroup") {
			for _, rule := range asList(props(sg)["SecurityGroupIngress"]) {
				r := rule.(map[string]any)
				from, _ := r["FromPort"].(float64)
				to, _ := r["ToPort"].(float64)
				if r["IpProtocol"] == "-1" || (from <= 22 && to >= 22) {
					t.Errorf("%s opens SSH (or everything): %v", id, r)
				}
				if r["CidrIp"] != c.cidr {
					t.Errorf("%s: ingress from %v, want only from allowedCidr %s", id, r["CidrIp"], c.cidr)
				}
				open = append(open, fmt.Sprint(from))
			}
		}
		if n := len(c.s.resources(t, tier1, "AWS::EC2::SecurityGroupIngress")); n != 0 {
			t.Errorf("%d separate ingress rules exist; every opening must be reviewed here", n)
		}
		sort.Strings(open)
		if strings.Join(open, ",") != "80,8081" {
			t.Errorf("open ports = %v, want exactly 80 (vote) and 8081 (result)", open)
		}
	}
}

func TestTier1_DataSurvivesTheBoxAndTheStack(t *testing.T) {
	tpl := defaults.template(t, tier1)
	volID, vol := defaults.only(t, tier1, "AWS::EC2::Volume")
	if vol["DeletionPolicy"] != "Snapshot" || vol["UpdateReplacePolicy"] != "Snapshot" {
		t.Errorf("data volume: DeletionPolicy %v, UpdateReplacePolicy %v; want Snapshot for both", vol["DeletionPolicy"], vol["UpdateReplacePolicy"])
	}
	// The volume is attached by the box at boot, not by CloudFormation, so a
	// replacement box never fails a deploy while the old one holds it.
	if n := len(defaults.resources(t, tier1, "AWS::EC2::VolumeAttachment")); n != 0 {
		t.Errorf("%d VolumeAttachment resources; the box attaches its data volume itself", n)
	}
	check(t, "daily backup kept backupRetentionDays (14)", func() {
		tpl.HasResourceProperties(str("AWS::Backup::BackupPlan"), obj(map[string]any{
			"BackupPlan": obj(map[string]any{"BackupPlanRule": arr(obj(map[string]any{
				"ScheduleExpression": "cron(0 3 * * ? *)",
				"Lifecycle":          obj(map[string]any{"DeleteAfterDays": 14}),
			}))}),
		}))
	})
	_, sel := defaults.only(t, tier1, "AWS::Backup::BackupSelection")
	if !strings.Contains(flatten(props(sel)["BackupSelection"].(map[string]any)["Resources"]), `"Ref":"`+volID+`"`) {
		t.Errorf("backup selection does not name the data volume %s: %v", volID, props(sel)["BackupSelection"])
	}
	for _, typ := range []string{"AWS::Backup::BackupVault", "AWS::Logs::LogGroup", "AWS::KMS::Key"} {
		for id, r := range defaults.resources(t, tier1, typ) {
			if r["DeletionPolicy"] != "Retain" {
				t.Errorf("%s %s: DeletionPolicy %v, want Retain", typ, id, r["DeletionPolicy"])
			}
		}
	}
	check(t, "backup vault encrypted with a customer key", func() {
		tpl.HasResourceProperties(str("AWS::Backup::BackupVault"), obj(map[string]any{
			"EncryptionKeyArn": assertions.Match_AnyValue(),
		}))
	})
}

func TestTier1_PasswordIsGeneratedAndNeverInTemplateOrUserData(t *testing.T) {
	secID, sec := defaults.only(t, tier1, "AWS::SecretsManager::Secret")
	p := props(sec)
	if _, ok := p["SecretString"]; ok {
		t.Errorf("secret %s has a SecretString in the template", secID)
	}
	if p["GenerateSecretString"] == nil {
		t.Errorf("secret %s is not generated by Secrets Manager", secID)
	}
	_, box := defaults.only(t, tier1, "AWS::EC2::Instance")
	ud := flatten(props(box)["UserData"])
	// Only the secret's ARN (its Ref) may appear; a dynamic reference or an
	// attribute of the secret would put the value into the instance's user data.
	for _, bad := range []string{"{{resolve:", `"Fn::GetAtt":["` + secID, "PASSWORD=", "password=", "--password"} {
		if strings.Contains(ud, bad) {
			t.Errorf("user data contains %q", bad)
		}
	}
	// It is read at boot, by ARN, into tmpfs.
	for _, want := range []string{
		"secretsmanager get-secret-value",
		`--secret-id '${{"Ref":"` + secID + `"}}'`,
		"/run/ladder/db-password",
		"DATABASE_PASSWORD_FILE=/run/secrets/db-password",
	} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q", want)
		}
	}
}

func TestTier1_RunsTheVotingAppRedisAndPostgresAsRestartingUnits(t *testing.T) {
	_, box := defaults.only(t, tier1, "AWS::EC2::Instance")
	ud := flatten(props(box)["UserData"])
	for _, svc := range []string{"vote", "worker", "result"} {
		unit := regexp.MustCompile(`(?s)cat >/etc/systemd/system/ladder-` + svc + `\.service <<'LADDER_EOF'(.*?)LADDER_EOF`).FindStringSubmatch(ud)
		if unit == nil {
			t.Errorf("no systemd unit for %s", svc)
			continue
		}
		for _, want := range []string{"Restart=always", "--read-only", "--cap-drop ALL", "--user 65532:65532", "--log-driver awslogs", "container-assets"} {
			if !strings.Contains(unit[1], want) {
				t.Errorf("%s unit lacks %q", svc, want)
			}
		}
	}
	// The internet-facing vote service (queue mode) never sees the database
	// password; the worker and result do.
	for svc, wantPassword := range map[string]bool{"vote": false, "worker": true, "result": true} {
		unit := regexp.MustCompile(`(?s)ladder-` + svc + `\.service <<'LADDER_EOF'(.*?)LADDER_EOF`).FindStringSubmatch(ud)
		if unit != nil && strings.Contains(unit[1], "db-password") != wantPassword {
			t.Errorf("%s unit mounts the database password: %v, want %v", svc, !wantPassword, wantPassword)
		}
	}
	for _, want := range []string{"postgresql15-server", "redis6", "Restart=always", "[scripts-user, always]", "appendonly yes", "listen_addresses = 'localhost'", "OPTION_A=Cats", "OPTION_B=Dogs"} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q", want)
		}
	}
}

func TestTier1_StatusChecksRecoverAndReboot(t *testing.T) {
	var actions []string
	for _, a := range defaults.resources(t, tier1, "AWS::CloudWatch::Alarm") {
		actions = append(actions, flatten(props(a)["AlarmActions"]))
	}
	all := strings.Join(actions, "\n")
	for _, want := range []string{":automate:", ":ec2:recover", ":ec2:reboot"} {
		if !strings.Contains(all, want) {
			t.Errorf("no alarm action %q among %v", want, actions)
		}
	}
}

func TestTier1_DNSRecordPointsAtTheElasticIP_OnlyWithADomain(t *testing.T) {
	if n := len(defaults.resources(t, tier1, "AWS::Route53::RecordSet")); n != 0 {
		t.Errorf("with no domain configured, %d records were made", n)
	}
	eipID, _ := full.only(t, tier1, "AWS::EC2::EIP")
	_, rec := full.only(t, tier1, "AWS::Route53::RecordSet")
	p := props(rec)
	if p["Type"] != "A" || p["Name"] != "tier1.vote.example.com." || p["HostedZoneId"] != "Z0123456789ABCDEFGHIJ" {
		t.Errorf("record = %v", p)
	}
	if got := flatten(p["ResourceRecords"]); got != `${{"Fn::GetAtt":["`+eipID+`","PublicIp"]}}` {
		t.Errorf("record points at %s, want the EIP %s", got, eipID)
	}
}

func TestTier1_OutputsShowTheURLs(t *testing.T) {
	out := func(s *synthesized, key string) string {
		o, _ := s.templates[tier1]["Outputs"].(map[string]any)
		v, _ := o[key].(map[string]any)
		return flatten(v["Value"])
	}
	if got := out(full, "VoteUrl"); got != "http://tier1.vote.example.com/" {
		t.Errorf("VoteUrl = %q", got)
	}
	if got := out(full, "ResultUrl"); got != "http://tier1.vote.example.com:8081/" {
		t.Errorf("ResultUrl = %q", got)
	}
	if got := out(defaults, "VoteUrl"); !strings.Contains(got, "PublicIp") {
		t.Errorf("without a domain VoteUrl should be the raw address, got %q", got)
	}
}

func TestTier1_EnvironmentAgnosticWithoutAccount(t *testing.T) {
	st := defaults.stacks[tier1]
	if r := *st.Region(); r != "us-west-2" {
		t.Errorf("region = %s", r)
	}
	if a := *st.Account(); !strings.Contains(a, "Token") && !strings.Contains(a, "AWS::AccountId") {
		t.Errorf("account = %s, want unresolved (no account configured)", a)
	}
	if a := *full.stacks[tier1].Account(); a != "123456789012" {
		t.Errorf("account = %s, want the configured one", a)
	}
}
