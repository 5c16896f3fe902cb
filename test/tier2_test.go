package test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Tier 2, "10,000+ users": CloudFront + WAF -> an ALB that only CloudFront
// can reach -> an Auto Scaling group over two AZs -> Aurora PostgreSQL with
// a reader in another AZ. No single point of failure, no data lost with a
// stack, no one let in.

func TestTier2_IsItsOwnStackWithItsEdgeStacks(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		for _, c := range []struct{ stack, region string }{{tier2, "us-west-2"}, {tier2Edge, "us-east-1"}, {tier2EdgeAlarms, "us-east-1"}} {
			st, ok := set.stacks[c.stack]
			if !ok {
				t.Fatalf("stack %s is not synthesized (have %v)", c.stack, set.names())
			}
			if r := *st.Region(); r != c.region {
				t.Errorf("%s is in %s, want %s", c.stack, r, c.region)
			}
		}
		deps := func(name string) []string {
			var out []string
			for _, d := range *set.stacks[name].Dependencies() {
				out = append(out, *d.StackName())
			}
			return out
		}
		// The edge stack exists before Tier 2 uses its web ACL; the alarms
		// read the distributions after Tier 2 made them.
		if d := deps(tier2); strings.Join(d, ",") != tier2Edge {
			t.Errorf("%s depends on %v, want only %s", tier2, d, tier2Edge)
		}
		if d := deps(tier2EdgeAlarms); strings.Join(d, ",") != tier2 {
			t.Errorf("%s depends on %v, want only %s", tier2EdgeAlarms, d, tier2)
		}
	}
}

// --- Network ------------------------------------------------------------------

func TestTier2_NetworkSpansTwoAZsWithPublicPrivateAndIsolatedSubnets(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		kinds := map[string][]string{}
		for _, sn := range set.resources(t, tier2, "AWS::EC2::Subnet") {
			var kind string
			for _, tag := range asList(props(sn)["Tags"]) {
				if m := tag.(map[string]any); m["Key"] == "aws-cdk:subnet-name" {
					kind = m["Value"].(string)
				}
			}
			kinds[kind] = append(kinds[kind], flatten(props(sn)["AvailabilityZone"]))
		}
		for _, kind := range []string{"public", "private", "isolated"} {
			azs := kinds[kind]
			sort.Strings(azs)
			if len(azs) != 2 || azs[0] == azs[1] {
				t.Errorf("%s subnets are in %v, want one in each of two AZs", kind, azs)
			}
		}
	}
	// One NAT gateway by default: the cost/availability trade-off the README
	// states; natGateways raises it.
	if n := len(defaults.resources(t, tier2, "AWS::EC2::NatGateway")); n != 1 {
		t.Errorf("%d NAT gateways, want natGateways' default 1", n)
	}
	var services []string
	for _, ep := range defaults.resources(t, tier2, "AWS::EC2::VPCEndpoint") {
		name := flatten(props(ep)["ServiceName"])
		services = append(services, name[strings.LastIndex(name, ".")+1:]+":"+fmt.Sprint(props(ep)["VpcEndpointType"]))
	}
	sort.Strings(services)
	// ServiceName ends ".<region>.<service>"; the short names are what is left
	// after the last dot (so "ecr.dkr" shows as "dkr").
	want := "api:Interface,dkr:Interface,ec2messages:Interface,logs:Interface,s3:Gateway,secretsmanager:Interface,ssm:Interface,ssmmessages:Interface"
	if got := strings.Join(services, ","); got != want {
		t.Errorf("VPC endpoints = %s\nwant %s", got, want)
	}
}

// --- Database -----------------------------------------------------------------

func TestTier2_AuroraIsMultiAZEncryptedBackedUpAndSnapshottedOnDelete(t *testing.T) {
	tpl := defaults.template(t, tier2)
	clusterID, cluster := defaults.only(t, tier2, "AWS::RDS::DBCluster")
	p := props(cluster)
	if p["Engine"] != "aurora-postgresql" || !strings.HasPrefix(fmt.Sprint(p["EngineVersion"]), "16.") {
		t.Errorf("engine %v %v, want aurora-postgresql 16.x", p["Engine"], p["EngineVersion"])
	}
	if p["StorageEncrypted"] != true {
		t.Error("storage is not encrypted")
	}
	if got := flatten(p["KmsKeyId"]); !strings.Contains(got, `"Fn::GetAtt":["DatabaseKey`) {
		t.Errorf("storage key = %s, want the database's own customer key", got)
	}
	if r, _ := p["BackupRetentionPeriod"].(float64); r < 7 {
		t.Errorf("backups kept %v days, want at least 7", p["BackupRetentionPeriod"])
	}
	if p["DeletionProtection"] != true {
		t.Error("deletion protection is off by default")
	}
	if cluster["DeletionPolicy"] != "Snapshot" || cluster["UpdateReplacePolicy"] != "Snapshot" {
		t.Errorf("cluster DeletionPolicy %v, UpdateReplacePolicy %v; want Snapshot", cluster["DeletionPolicy"], cluster["UpdateReplacePolicy"])
	}
	if p["MasterUserPassword"] == nil || !strings.Contains(flatten(p["MasterUserPassword"]), "{{resolve:secretsmanager:") {
		t.Errorf("master password is not a Secrets Manager dynamic reference: %v", p["MasterUserPassword"])
	}
	// Writer and reader, each pinned to its own AZ.
	for _, set := range []*synthesized{defaults, full} {
		azs := map[string]bool{}
		for id, inst := range set.resources(t, tier2, "AWS::RDS::DBInstance") {
			ip := props(inst)
			if flatten(ip["DBClusterIdentifier"]) != `${{"Ref":"`+clusterID+`"}}` {
				t.Errorf("instance %s is not in the cluster", id)
			}
			if ip["PubliclyAccessible"] != false {
				t.Errorf("instance %s: PubliclyAccessible %v", id, ip["PubliclyAccessible"])
			}
			if az := flatten(ip["AvailabilityZone"]); az != "" {
				azs[az] = true
			}
		}
		if len(azs) != 2 || len(set.resources(t, tier2, "AWS::RDS::DBInstance")) != 2 {
			t.Errorf("Aurora instances in AZs %v, want a writer and a reader in two different AZs", azs)
		}
	}
	check(t, "TLS required by the server", func() {
		tpl.HasResourceProperties(str("AWS::RDS::DBClusterParameterGroup"), obj(map[string]any{
			"Parameters": obj(map[string]any{"rds.force_ssl": "1"}),
		}))
	})
	check(t, "password rotated every 30 days", func() {
		tpl.HasResourceProperties(str("AWS::SecretsManager::RotationSchedule"), obj(map[string]any{
			"RotationRules": obj(map[string]any{"ScheduleExpression": "rate(30 days)"}),
		}))
	})
	// The credentials survive the cluster, so a restored snapshot opens.
	for id, sec := range defaults.resources(t, tier2, "AWS::SecretsManager::Secret") {
		if _, ok := props(sec)["SecretString"]; ok {
			t.Errorf("secret %s has its value in the template", id)
		}
		if sec["DeletionPolicy"] != "Retain" {
			t.Errorf("secret %s: DeletionPolicy %v, want Retain", id, sec["DeletionPolicy"])
		}
	}
	for id, key := range defaults.resources(t, tier2, "AWS::KMS::Key") {
		if key["DeletionPolicy"] != "Retain" || props(key)["EnableKeyRotation"] != true {
			t.Errorf("key %s: DeletionPolicy %v, rotation %v; a lost key makes the snapshots unreadable", id, key["DeletionPolicy"], props(key)["EnableKeyRotation"])
		}
	}
}

func TestTier2_OnlyTheAppTheMigrationAndTheRotationReachTheDatabase(t *testing.T) {
	_, cluster := defaults.only(t, tier2, "AWS::RDS::DBCluster")
	sgs := asList(props(cluster)["VpcSecurityGroupIds"])
	if len(sgs) != 1 {
		t.Fatalf("cluster security groups = %v", sgs)
	}
	dbSG := flatten(sgs[0])
	sg := func(prefix string) string {
		for id := range defaults.resources(t, tier2, "AWS::EC2::SecurityGroup") {
			if strings.HasPrefix(id, prefix) {
				return `${{"Fn::GetAtt":["` + id + `","GroupId"]}}`
			}
		}
		t.Fatalf("no security group %s*", prefix)
		return ""
	}
	want := []string{sg("AppSecurityGroup"), sg("DbMigrateSecurityGroup"), sg("DatabaseClusterRotationSingleUserSecurityGroup")}
	sort.Strings(want)
	var from []string
	for id, r := range defaults.resources(t, tier2, "AWS::EC2::SecurityGroupIngress") {
		p := props(r)
		if flatten(p["GroupId"]) != dbSG {
			continue
		}
		if p["CidrIp"] != nil || p["SourcePrefixListId"] != nil {
			t.Errorf("%s lets an address range into the database: %v", id, p)
		}
		from = append(from, flatten(p["SourceSecurityGroupId"]))
	}
	sort.Strings(from)
	if strings.Join(from, "\n") != strings.Join(want, "\n") {
		t.Errorf("database ingress from\n%s\nwant\n%s", strings.Join(from, "\n"), strings.Join(want, "\n"))
	}
	for id, r := range defaults.resources(t, tier2, "AWS::EC2::SecurityGroup") {
		if flatten(`${{"Fn::GetAtt":["`+id+`","GroupId"]}}`) == dbSG && len(asList(props(r)["SecurityGroupIngress"])) != 0 {
			t.Errorf("database security group has inline ingress %v", props(r)["SecurityGroupIngress"])
		}
	}
}

func TestTier2_SchemaIsMigratedBeforeAnyAppServerStarts(t *testing.T) {
	migrationID, _ := defaults.only(t, tier2, "Custom::LadderSchema")
	_, group := defaults.only(t, tier2, "AWS::AutoScaling::AutoScalingGroup")
	deps := fmt.Sprint(group["DependsOn"])
	for _, want := range []string{migrationID, "DatabaseClusterWriter", "DatabaseClusterReader"} {
		if !strings.Contains(deps, want) {
			t.Errorf("the app servers do not wait for %s: DependsOn %v", want, deps)
		}
	}
}

// --- Compute ------------------------------------------------------------------

func TestTier2_AtLeastTwoAppServersAcrossTwoAZs_ReplacedOnELBHealth(t *testing.T) {
	_, group := defaults.only(t, tier2, "AWS::AutoScaling::AutoScalingGroup")
	p := props(group)
	if p["MinSize"] != "2" || p["MaxSize"] != "6" || p["DesiredCapacity"] != nil {
		t.Errorf("MinSize %v MaxSize %v DesiredCapacity %v; want 2, 6 and no fixed desired capacity", p["MinSize"], p["MaxSize"], p["DesiredCapacity"])
	}
	subnets := asList(p["VPCZoneIdentifier"])
	azs := map[string]bool{}
	all := defaults.resources(t, tier2, "AWS::EC2::Subnet")
	for _, sn := range subnets {
		id := strings.TrimSuffix(strings.TrimPrefix(flatten(sn), `${{"Ref":"`), `"}}`)
		s, ok := all[id]
		if !ok || !strings.Contains(id, "private") {
			t.Errorf("group subnet %s is not one of the private subnets", id)
			continue
		}
		azs[flatten(props(s)["AvailabilityZone"])] = true
	}
	if len(azs) != 2 {
		t.Errorf("the group spans AZs %v, want two", azs)
	}
	if p["HealthCheckType"] != "ELB" {
		t.Errorf("HealthCheckType %v, want ELB", p["HealthCheckType"])
	}
	if g, _ := p["HealthCheckGracePeriod"].(float64); g < 60 {
		t.Errorf("HealthCheckGracePeriod %v, want time to boot and pull the images", p["HealthCheckGracePeriod"])
	}
	if n := len(asList(p["TargetGroupARNs"])); n != 2 {
		t.Errorf("the group is in %d target groups, want vote and result", n)
	}
}

func TestTier2_LaunchTemplateChangeRollsInstancesOneAtATime(t *testing.T) {
	groupID, group := defaults.only(t, tier2, "AWS::AutoScaling::AutoScalingGroup")
	ru, _ := group["UpdatePolicy"].(map[string]any)["AutoScalingRollingUpdate"].(map[string]any)
	if ru == nil {
		t.Fatalf("no rolling update policy: %v", group["UpdatePolicy"])
	}
	if ru["MaxBatchSize"] != 1.0 || ru["MinInstancesInService"] != 2.0 || ru["WaitOnResourceSignals"] != true {
		t.Errorf("rolling update %v: want one at a time, 2 in service, each new instance signalling ready", ru)
	}
	cp, _ := group["CreationPolicy"].(map[string]any)["ResourceSignal"].(map[string]any)
	if cp == nil || cp["Count"] != 2.0 {
		t.Errorf("creation waits for %v signals, want 2 (min capacity)", cp)
	}
	// The launch template's latest version is what a change rolls out.
	if v := flatten(props(group)["LaunchTemplate"].(map[string]any)["Version"]); !strings.Contains(v, "LatestVersionNumber") {
		t.Errorf("the group uses launch template version %s, want LatestVersionNumber", v)
	}
	// The instances signal the group by its logical id, once ready.
	ud := tier2UserData(t, defaults)
	for _, want := range []string{"--resource '" + groupID + "'", "--stack 'Ladder-Tier2'", "/readyz", "signal 0", "trap 'signal 1' ERR"} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q", want)
		}
	}
}

func TestTier2_AppServersAreGravitonIMDSv2EncryptedNoSSH(t *testing.T) {
	_, lt := defaults.only(t, tier2, "AWS::EC2::LaunchTemplate")
	d := props(lt)["LaunchTemplateData"].(map[string]any)
	if d["InstanceType"] != "t4g.small" {
		t.Errorf("InstanceType %v", d["InstanceType"])
	}
	if !regexp.MustCompile(`al2023amikernel.*arm64`).MatchString(flatten(d["ImageId"])) {
		t.Errorf("ImageId %v is not the arm64 Amazon Linux 2023 SSM parameter", flatten(d["ImageId"]))
	}
	md, _ := d["MetadataOptions"].(map[string]any)
	if md["HttpTokens"] != "required" || md["HttpPutResponseHopLimit"] != 1.0 {
		t.Errorf("MetadataOptions %v: want IMDSv2 required, hop limit 1", md)
	}
	if d["KeyName"] != nil {
		t.Errorf("key pair %v: no SSH keys at all", d["KeyName"])
	}
	bdms := asList(d["BlockDeviceMappings"])
	if len(bdms) == 0 {
		t.Error("no block device mappings: the root volume would be unencrypted")
	}
	for _, m := range bdms {
		ebs, _ := m.(map[string]any)["Ebs"].(map[string]any)
		if ebs["Encrypted"] != true || ebs["VolumeType"] != "gp3" {
			t.Errorf("volume %v: want encrypted gp3", m)
		}
	}
	// Session Manager instead of SSH: the role has the SSM core policy, and
	// the app servers admit nothing but the load balancer.
	found := false
	for _, r := range defaults.resources(t, tier2, "AWS::IAM::Role") {
		if strings.Contains(flatten(props(r)["ManagedPolicyArns"]), "AmazonSSMManagedInstanceCore") {
			found = true
		}
	}
	if !found {
		t.Error("no role with AmazonSSMManagedInstanceCore (Session Manager)")
	}
	appSG := ""
	for id := range defaults.resources(t, tier2, "AWS::EC2::SecurityGroup") {
		if strings.HasPrefix(id, "AppSecurityGroup") {
			appSG = `${{"Fn::GetAtt":["` + id + `","GroupId"]}}`
		}
	}
	var ports []string
	for id, r := range defaults.resources(t, tier2, "AWS::EC2::SecurityGroupIngress") {
		p := props(r)
		if flatten(p["GroupId"]) != appSG {
			continue
		}
		if !strings.Contains(flatten(p["SourceSecurityGroupId"]), "LoadBalancerSecurityGroup") {
			t.Errorf("%s lets %v reach the app servers", id, p)
		}
		ports = append(ports, fmt.Sprint(p["FromPort"]))
	}
	sort.Strings(ports)
	if strings.Join(ports, ",") != "8080,8081" {
		t.Errorf("app servers open ports %v, want 8080 (vote) and 8081 (result) from the load balancer only", ports)
	}
}

func TestTier2_ScalesOnCPUAndOnRequestsPerTarget(t *testing.T) {
	var metrics []string
	for _, p := range defaults.resources(t, tier2, "AWS::AutoScaling::ScalingPolicy") {
		cfg, _ := props(p)["TargetTrackingConfiguration"].(map[string]any)
		spec, _ := cfg["PredefinedMetricSpecification"].(map[string]any)
		metrics = append(metrics, fmt.Sprint(spec["PredefinedMetricType"]))
		if spec["PredefinedMetricType"] == "ALBRequestCountPerTarget" && !strings.Contains(flatten(spec["ResourceLabel"]), "VoteTargets") {
			t.Errorf("requests per target tracks %s, want the vote target group", flatten(spec["ResourceLabel"]))
		}
	}
	sort.Strings(metrics)
	if strings.Join(metrics, ",") != "ALBRequestCountPerTarget,ASGAverageCPUUtilization" {
		t.Errorf("target tracking on %v, want CPU and ALB requests per target", metrics)
	}
}

// tier2UserData is the app servers' setup script as text.
func tier2UserData(t *testing.T, set *synthesized) string {
	t.Helper()
	_, lt := set.only(t, tier2, "AWS::EC2::LaunchTemplate")
	return flatten(props(lt)["LaunchTemplateData"].(map[string]any)["UserData"])
}

func TestTier2_AppServersRunVoteDirectAndResultOnTheReader_NoSecretInUserData(t *testing.T) {
	ud := tier2UserData(t, defaults)
	env := func(svc string) string {
		m := regexp.MustCompile(`(?s)cat >/etc/ladder/` + svc + `\.env <<'LADDER_EOF'\n(.*?)LADDER_EOF`).FindStringSubmatch(ud)
		if m == nil {
			t.Fatalf("no environment file for %s", svc)
		}
		return m[1]
	}
	vote, result := env("vote"), env("result")
	tlsURL := regexp.MustCompile(`^postgres://\$\{\{"Fn::GetAtt":\["DatabaseCluster[0-9A-F]+","(Endpoint|ReadEndpoint)\.Address"\]\}\}:5432/votes\?sslmode=verify-full&sslrootcert=/run/secrets/rds-ca\.pem$`)
	lines := func(s string) map[string]string {
		out := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			k, v, _ := strings.Cut(l, "=")
			out[k] = v
		}
		return out
	}
	v, r := lines(vote), lines(result)
	if v["VOTE_MODE"] != "direct" || v["PORT"] != "8080" || r["PORT"] != "8081" {
		t.Errorf("vote %v, result %v: want vote in direct mode on 8080, result on 8081", v, r)
	}
	for name, e := range map[string]map[string]string{"vote": v, "result": r} {
		if e["DATABASE_SECRET_FILE"] != "/run/secrets/db-secret.json" {
			t.Errorf("%s: DATABASE_SECRET_FILE = %q", name, e["DATABASE_SECRET_FILE"])
		}
		if m := tlsURL.FindStringSubmatch(e["DATABASE_URL"]); m == nil || m[1] != "Endpoint" {
			t.Errorf("%s: DATABASE_URL = %q, want the writer endpoint with verified TLS", name, e["DATABASE_URL"])
		}
		for _, bad := range []string{"REDIS_URL", "DB_MIGRATE", "DATABASE_PASSWORD_FILE"} {
			if _, ok := e[bad]; ok {
				t.Errorf("%s sets %s: Tier 2 has no Redis, and the schema is the custom resource's", name, bad)
			}
		}
	}
	if m := tlsURL.FindStringSubmatch(r["DATABASE_READ_URL"]); m == nil || m[1] != "ReadEndpoint" {
		t.Errorf("result: DATABASE_READ_URL = %q, want the reader endpoint with verified TLS", r["DATABASE_READ_URL"])
	}
	if _, ok := v["DATABASE_READ_URL"]; ok {
		t.Error("vote reads from the reader: it must read its own writes")
	}
	for _, svc := range []string{"vote", "result"} {
		unit := regexp.MustCompile(`(?s)cat >/etc/systemd/system/ladder-` + svc + `\.service <<'LADDER_EOF'(.*?)LADDER_EOF`).FindStringSubmatch(ud)
		if unit == nil {
			t.Fatalf("no systemd unit for %s", svc)
		}
		for _, want := range []string{"Restart=always", "--read-only", "--cap-drop ALL", "--user 65532:65532", "--log-driver awslogs",
			"/run/ladder/db-secret.json:/run/secrets/db-secret.json:ro", "/etc/ladder/rds-ca.pem:/run/secrets/rds-ca.pem:ro"} {
			if !strings.Contains(unit[1], want) {
				t.Errorf("%s unit lacks %q", svc, want)
			}
		}
	}
	if strings.Contains(ud, "ladder-worker") {
		t.Error("Tier 2 runs no worker: votes are committed by the vote service")
	}
	// The secret is read at boot and every few minutes, by ARN, into tmpfs;
	// its value is never in the user data.
	for _, bad := range []string{"{{resolve:", "password=", "PASSWORD="} {
		if strings.Contains(ud, bad) {
			t.Errorf("user data contains %q", bad)
		}
	}
	for _, want := range []string{
		"secretsmanager get-secret-value",
		`--secret-id '${{"Ref":"DatabaseClusterSecretAttachment`,
		"/run/ladder/db-secret.json",
		"ladder-secrets-refresh.timer",
		"OnUnitActiveSec=2min",
		"systemctl try-restart ladder-vote.service ladder-result.service",
		"truststore.pki.rds.amazonaws.com",
		"[scripts-user, always]",
	} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q", want)
		}
	}
}

// --- Load balancing -----------------------------------------------------------

func TestTier2_LoadBalancerIsClosedToTheInternetExceptThroughCloudFront(t *testing.T) {
	albID, alb := defaults.only(t, tier2, "AWS::ElasticLoadBalancingV2::LoadBalancer")
	if props(alb)["Scheme"] != "internet-facing" {
		t.Errorf("Scheme %v", props(alb)["Scheme"])
	}
	sgs := asList(props(alb)["SecurityGroups"])
	if len(sgs) != 1 {
		t.Fatalf("load balancer security groups %v", sgs)
	}
	albSG := flatten(sgs[0])
	lookupID, lookup := defaults.only(t, tier2, "Custom::AWS")
	if call := fmt.Sprint(props(lookup)["Update"]); !strings.Contains(call, "describeManagedPrefixLists") || !strings.Contains(call, "com.amazonaws.global.cloudfront.origin-facing") {
		t.Errorf("prefix list lookup = %s", call)
	}
	var rules []map[string]any
	for _, r := range defaults.resources(t, tier2, "AWS::EC2::SecurityGroupIngress") {
		if flatten(props(r)["GroupId"]) == albSG {
			rules = append(rules, props(r))
		}
	}
	for id, r := range defaults.resources(t, tier2, "AWS::EC2::SecurityGroup") {
		if `${{"Fn::GetAtt":["`+id+`","GroupId"]}}` == albSG {
			for _, in := range asList(props(r)["SecurityGroupIngress"]) {
				rules = append(rules, in.(map[string]any))
			}
		}
	}
	if len(rules) != 1 {
		t.Fatalf("load balancer ingress rules %v, want exactly one (CloudFront)", rules)
	}
	r := rules[0]
	if r["CidrIp"] != nil || r["CidrIpv6"] != nil || r["SourceSecurityGroupId"] != nil || r["FromPort"] != 80.0 || r["ToPort"] != 80.0 {
		t.Errorf("load balancer ingress %v, want port 80 from the CloudFront prefix list only", r)
	}
	if got := flatten(r["SourcePrefixListId"]); got != `${{"Fn::GetAtt":["`+lookupID+`","PrefixLists.0.PrefixListId"]}}` {
		t.Errorf("ingress from prefix list %s, want the looked-up CloudFront origin-facing list", got)
	}

	// Only requests with the origin secret reach a target, routed by site.
	_, listener := defaults.only(t, tier2, "AWS::ElasticLoadBalancingV2::Listener")
	lp := props(listener)
	if lp["Port"] != 80.0 || lp["Protocol"] != "HTTP" || flatten(lp["LoadBalancerArn"]) != `${{"Ref":"`+albID+`"}}` {
		t.Errorf("listener %v", lp)
	}
	def, _ := asList(lp["DefaultActions"])[0].(map[string]any)
	if def["Type"] != "fixed-response" || def["FixedResponseConfig"].(map[string]any)["StatusCode"] != "403" {
		t.Errorf("default action %v, want a fixed 403", def)
	}
	originSecretRef := `{{resolve:secretsmanager:${{"Ref":"OriginSecret`
	sites := map[string]string{}
	for id, rule := range defaults.resources(t, tier2, "AWS::ElasticLoadBalancingV2::ListenerRule") {
		conds := map[string]string{}
		for _, c := range asList(props(rule)["Conditions"]) {
			h := c.(map[string]any)["HttpHeaderConfig"].(map[string]any)
			vals := asList(h["Values"])
			if len(vals) != 1 {
				t.Errorf("%s: header %v matches %v, want one value", id, h["HttpHeaderName"], vals)
				continue
			}
			conds[h["HttpHeaderName"].(string)] = flatten(vals[0])
		}
		if !strings.HasPrefix(conds["X-Ladder-Origin-Verify"], originSecretRef) || !strings.HasSuffix(conds["X-Ladder-Origin-Verify"], ":SecretString:::}}") {
			t.Errorf("%s: origin header must equal the origin secret (dynamic reference), got %q", id, conds["X-Ladder-Origin-Verify"])
		}
		action := asList(props(rule)["Actions"])[0].(map[string]any)
		sites[conds["X-Ladder-Site"]] = flatten(action["TargetGroupArn"])
	}
	tgPort := func(ref string) string {
		for id, tg := range defaults.resources(t, tier2, "AWS::ElasticLoadBalancingV2::TargetGroup") {
			if ref == `${{"Ref":"`+id+`"}}` {
				p := props(tg)
				if p["HealthCheckPath"] != "/healthz" {
					t.Errorf("target group %s health check path %v, want /healthz", id, p["HealthCheckPath"])
				}
				return fmt.Sprint(p["Port"])
			}
		}
		return "none"
	}
	if len(sites) != 2 || tgPort(sites["vote"]) != "8080" || tgPort(sites["result"]) != "8081" {
		t.Errorf("listener rules route sites %v, want vote -> :8080 and result -> :8081", sites)
	}
}

func TestTier2_OriginSecretIsNeverInAnyTemplate(t *testing.T) {
	var originSecret string
	for id, s := range defaults.resources(t, tier2, "AWS::SecretsManager::Secret") {
		if strings.HasPrefix(id, "OriginSecret") {
			originSecret = id
			p := props(s)
			if p["SecretString"] != nil || p["GenerateSecretString"] == nil {
				t.Errorf("origin secret %s is not generated by Secrets Manager: %v", id, p)
			}
			if g := p["GenerateSecretString"].(map[string]any); g["ExcludePunctuation"] != true {
				t.Errorf("origin secret %v: must be a valid header value", g)
			}
		}
	}
	if originSecret == "" {
		t.Fatal("no origin secret")
	}
	// Every place the header's value is used is a dynamic reference to it:
	// the listener rules and both CloudFront origins.
	uses := 0
	for _, set := range []*synthesized{defaults, full} {
		raw, _ := json.Marshal(set.templates[tier2])
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				name, _ := x["HeaderName"].(string)
				if name == "" {
					name, _ = x["HttpHeaderName"].(string)
				}
				if name == "X-Ladder-Origin-Verify" {
					for _, val := range append(asList(x["HeaderValue"]), asList(x["Values"])...) {
						uses++
						if got := flatten(val); got != `{{resolve:secretsmanager:${{"Ref":"`+originSecret+`"}}:SecretString:::}}` {
							t.Errorf("origin header value %s is not the secret's dynamic reference", got)
						}
					}
				}
				for _, e := range x {
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		var tpl any
		_ = json.Unmarshal(raw, &tpl)
		walk(tpl)
	}
	// Per synth: 2 listener rules + 2 distributions; two synths.
	if uses != 8 {
		t.Errorf("the origin header is used %d times, want 8 (2 rules and 2 origins, in each of 2 synths)", uses)
	}
}

func TestTier2_LoadBalancerLogsToAnEncryptedPrivateBucket_AndIsDeletionProtected(t *testing.T) {
	_, alb := defaults.only(t, tier2, "AWS::ElasticLoadBalancingV2::LoadBalancer")
	attrs := map[string]string{}
	for _, a := range asList(props(alb)["LoadBalancerAttributes"]) {
		m := a.(map[string]any)
		attrs[m["Key"].(string)] = flatten(m["Value"])
	}
	if attrs["deletion_protection.enabled"] != "true" || attrs["access_logs.s3.enabled"] != "true" || attrs["routing.http.drop_invalid_header_fields.enabled"] != "true" {
		t.Errorf("load balancer attributes %v: want deletion protection, access logs, invalid headers dropped", attrs)
	}
	bucket := strings.TrimSuffix(strings.TrimPrefix(attrs["access_logs.s3.bucket"], `${{"Ref":"`), `"}}`)
	b, ok := defaults.resources(t, tier2, "AWS::S3::Bucket")[bucket]
	if !ok {
		t.Fatalf("access logs go to %q, not a bucket of this stack", attrs["access_logs.s3.bucket"])
	}
	p := props(b)
	if got := flatten(p["BucketEncryption"]); !strings.Contains(got, "AES256") {
		t.Errorf("log bucket encryption %s, want SSE-S3 (the only one ALB logs support)", got)
	}
	if b["DeletionPolicy"] != "Retain" || flatten(p["VersioningConfiguration"]) == "" {
		t.Errorf("log bucket: DeletionPolicy %v, versioning %v", b["DeletionPolicy"], p["VersioningConfiguration"])
	}
	if got := flatten(p["LifecycleConfiguration"]); !strings.Contains(got, `"ExpirationInDays":30`) {
		t.Errorf("log bucket lifecycle %s, want expiry after logRetentionDays (30)", got)
	}
}

// No bucket of the rung is public, each enforces TLS, and CloudFront reads
// the static bucket with Origin Access Control, never an OAI or a website.
func TestTier2_NoPublicBucket_StaticFilesThroughOAC(t *testing.T) {
	tpl := defaults.template(t, tier2)
	for id, b := range defaults.resources(t, tier2, "AWS::S3::Bucket") {
		pab, _ := props(b)["PublicAccessBlockConfiguration"].(map[string]any)
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if pab[k] != true {
				t.Errorf("bucket %s: %s is %v", id, k, pab[k])
			}
		}
		if props(b)["WebsiteConfiguration"] != nil {
			t.Errorf("bucket %s is a website", id)
		}
		check(t, "bucket "+id+" refuses plain HTTP", func() {
			tpl.HasResourceProperties(str("AWS::S3::BucketPolicy"), obj(map[string]any{
				"Bucket": map[string]any{"Ref": id},
				"PolicyDocument": obj(map[string]any{"Statement": arr(obj(map[string]any{
					"Effect":    "Deny",
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				}))}),
			}))
		})
	}
	for id, d := range defaults.resources(t, tier2, "AWS::CloudFront::Distribution") {
		for _, o := range asList(props(d)["DistributionConfig"].(map[string]any)["Origins"]) {
			om := o.(map[string]any)
			if s3, ok := om["S3OriginConfig"].(map[string]any); ok {
				if s3["OriginAccessIdentity"] != "" || om["OriginAccessControlId"] == nil {
					t.Errorf("distribution %s reads S3 without OAC: %v", id, om)
				}
			}
		}
	}
}

// --- CDN and edge -------------------------------------------------------------

func TestTier2_CloudFrontRedirectsToHTTPSAndHasWAF(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		dists := set.resources(t, tier2, "AWS::CloudFront::Distribution")
		if len(dists) != 2 {
			t.Fatalf("%d distributions, want one per site (vote, result)", len(dists))
		}
		edgeOutputs, _ := set.templates[tier2Edge]["Outputs"].(map[string]any)
		for id, d := range dists {
			dc := props(d)["DistributionConfig"].(map[string]any)
			behaviors := append([]any{dc["DefaultCacheBehavior"]}, asList(dc["CacheBehaviors"])...)
			for _, bh := range behaviors {
				if p := bh.(map[string]any)["ViewerProtocolPolicy"]; p != "redirect-to-https" && p != "https-only" {
					t.Errorf("%s: a behaviour allows plain HTTP (%v)", id, p)
				}
			}
			acl, _ := dc["WebACLId"].(map[string]any)["Fn::GetStackOutput"].(map[string]any)
			if acl == nil || acl["StackName"] != tier2Edge || acl["Region"] != "us-east-1" {
				t.Errorf("%s: WebACLId %v, want the edge stack's web ACL", id, dc["WebACLId"])
				continue
			}
			out, _ := edgeOutputs[acl["OutputName"].(string)].(map[string]any)
			if v := flatten(out["Value"]); !strings.Contains(v, `"Fn::GetAtt":["WebAcl`) || !strings.Contains(v, "Arn") {
				t.Errorf("%s: the edge output %v is not the web ACL's ARN: %s", id, acl["OutputName"], v)
			}
		}
	}
	check(t, "the web ACL is a CloudFront one", func() {
		defaults.template(t, tier2Edge).HasResourceProperties(str("AWS::WAFv2::WebACL"), obj(map[string]any{"Scope": "CLOUDFRONT"}))
	})
}

func TestTier2_SitesGetAliasRecordsOnlyWithADomain(t *testing.T) {
	if n := len(defaults.resources(t, tier2, "AWS::Route53::RecordSet")); n != 0 {
		t.Errorf("with no domain configured, %d records were made", n)
	}
	var got []string
	for _, r := range full.resources(t, tier2, "AWS::Route53::RecordSet") {
		p := props(r)
		if p["HostedZoneId"] != "Z0123456789ABCDEFGHIJ" || !strings.Contains(flatten(p["AliasTarget"]), "Cdn") {
			t.Errorf("record %v is not an alias to a distribution in the configured zone", p)
		}
		got = append(got, fmt.Sprint(p["Type"], " ", p["Name"]))
	}
	sort.Strings(got)
	want := "A result.vote.example.com.,A vote.vote.example.com.,AAAA result.vote.example.com.,AAAA vote.vote.example.com."
	if strings.Join(got, ",") != want {
		t.Errorf("records %v, want %s", got, want)
	}
	out := func(s *synthesized, key string) string {
		o, _ := s.templates[tier2]["Outputs"].(map[string]any)
		v, _ := o[key].(map[string]any)
		return flatten(v["Value"])
	}
	if v, r := out(full, "VoteUrl"), out(full, "ResultUrl"); v != "https://vote.vote.example.com/" || r != "https://result.vote.example.com/" {
		t.Errorf("VoteUrl %q, ResultUrl %q", v, r)
	}
	if v := out(defaults, "VoteUrl"); !strings.HasPrefix(v, "https://") || !strings.Contains(v, `"DomainName"`) {
		t.Errorf("without a domain VoteUrl should be the distribution's name, got %q", v)
	}
}

// --- Observability ------------------------------------------------------------

func TestTier2_AlarmsCoverTheLoadBalancerTheAppServersAndTheDatabase(t *testing.T) {
	topicID, _ := defaults.only(t, tier2, "AWS::SNS::Topic")
	seen := map[string]bool{}
	for id, a := range defaults.resources(t, tier2, "AWS::CloudWatch::Alarm") {
		p := props(a)
		seen[fmt.Sprint(p["Namespace"], "/", p["MetricName"])] = true
		if !strings.Contains(flatten(p["AlarmActions"]), `"Ref":"`+topicID+`"`) {
			t.Errorf("alarm %s does not notify the rung's topic: %v", id, flatten(p["AlarmActions"]))
		}
	}
	for _, want := range []string{
		"AWS/ApplicationELB/HTTPCode_ELB_5XX_Count",
		"AWS/ApplicationELB/HTTPCode_Target_5XX_Count",
		"AWS/ApplicationELB/TargetResponseTime",
		"AWS/ApplicationELB/UnHealthyHostCount",
		"AWS/AutoScaling/GroupInServiceInstances",
		"AWS/RDS/CPUUtilization",
		"AWS/RDS/FreeableMemory",
		"AWS/RDS/AuroraReplicaLagMaximum",
	} {
		if !seen[want] {
			t.Errorf("no alarm on %s (have %v)", want, seen)
		}
	}
	// CloudFront's metrics live in us-east-1: its alarms are in that stack.
	cf := map[string]int{}
	for _, a := range defaults.resources(t, tier2EdgeAlarms, "AWS::CloudWatch::Alarm") {
		if p := props(a); p["Namespace"] == "AWS/CloudFront" {
			cf[p["MetricName"].(string)]++
		}
	}
	if cf["5xxErrorRate"] != 2 || cf["OriginLatency"] != 2 {
		t.Errorf("CloudFront alarms %v, want 5xx rate and origin latency for both sites", cf)
	}
	// The configured address hears them.
	check(t, "alarm e-mail subscribed", func() {
		full.template(t, tier2).HasResourceProperties(str("AWS::SNS::Subscription"), obj(map[string]any{
			"Protocol": "email", "Endpoint": "ops@example.com",
		}))
	})
	defaults.only(t, tier2, "AWS::CloudWatch::Dashboard")
}
