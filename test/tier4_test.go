package test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ladder-cdk/ladder/app/ladder"
	"github.com/ladder-cdk/ladder/stacks/k8sapp"
)

// Tier 4 is "1,000,000+ users": votes in a DynamoDB global table, the app
// on EKS behind a CloudFormation ALB per region, Route53 failover between
// the regions, logs replicated and backups copied to the recovery region.
// The defaults run the recovery region as a pilot light (data only); the
// full context runs it warm (the app too).
const (
	tier4   = "Ladder-Tier4"
	tier4DR = "Ladder-Tier4-DR"
	// In us-east-1, where Route53 publishes health check metrics.
	tier4HealthAlarms = "Ladder-Tier4-HealthAlarms"
	// Regions of the defaults (primaryRegion, drRegion).
	tier4PrimaryRegion = "us-west-2"
	tier4DRRegion      = "us-east-2"
	tier4Table         = "ladder-tier4-votes"
)

// stackOutputFromDR reports a weak cross-region reference to the DR stack:
// the primary reads DR values when it deploys, with no custom resource.
func stackOutputFromDR(v any) bool {
	m, _ := v.(map[string]any)
	ref, _ := m["Fn::GetStackOutput"].(map[string]any)
	return ref["StackName"] == tier4DR && ref["Region"] == tier4DRRegion
}

// The two stacks live in their regions, and the DR stack is deployed first
// (`cdk deploy 'Ladder-Tier4*'` orders them): it holds what the primary
// points at.
func TestTier4StacksRegionsAndOrder(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		p, dr := set.stacks[tier4], set.stacks[tier4DR]
		if p == nil || dr == nil {
			t.Fatalf("Tier 4 stacks missing: %v", set.names())
		}
		if *p.Region() != tier4PrimaryRegion || *dr.Region() != tier4DRRegion {
			t.Errorf("regions %s / %s, want %s / %s", *p.Region(), *dr.Region(), tier4PrimaryRegion, tier4DRRegion)
		}
		deps := p.Dependencies()
		found := false
		for _, d := range *deps {
			found = found || *d.StackName() == tier4DR
		}
		if !found {
			t.Errorf("%s does not depend on %s: the DR stack must be deployed first", tier4, tier4DR)
		}
	}
}

// Votes: one global table, on demand, PITR and deletion protection in
// every region, a customer key per region (the DR one from the DR stack),
// a stream (global tables replicate through it), retained with the stack.
func TestTier4GlobalTable(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		id, table := set.only(t, tier4, "AWS::DynamoDB::GlobalTable")
		p := props(table)
		if p["TableName"] != tier4Table || p["BillingMode"] != "PAY_PER_REQUEST" {
			t.Errorf("table name %v billing %v", p["TableName"], p["BillingMode"])
		}
		if flatten(p["KeySchema"]) != `${{"AttributeName":"pk","KeyType":"HASH"}}` {
			t.Errorf("key schema %s: want pk (S) only, as services/internal/store/dynamodb.go", flatten(p["KeySchema"]))
		}
		if ss, _ := p["StreamSpecification"].(map[string]any); ss["StreamViewType"] != "NEW_AND_OLD_IMAGES" {
			t.Errorf("stream %v", p["StreamSpecification"])
		}
		if sse, _ := p["SSESpecification"].(map[string]any); sse["SSEEnabled"] != true || sse["SSEType"] != "KMS" {
			t.Errorf("SSE %v", p["SSESpecification"])
		}
		if table["DeletionPolicy"] != "Retain" || table["UpdateReplacePolicy"] != "Retain" {
			t.Errorf("%s deletion/replace policy %v/%v", id, table["DeletionPolicy"], table["UpdateReplacePolicy"])
		}
		regions := map[string]map[string]any{}
		for _, r := range p["Replicas"].([]any) {
			rep := r.(map[string]any)
			regions[rep["Region"].(string)] = rep
		}
		if len(regions) != 2 || regions[tier4PrimaryRegion] == nil || regions[tier4DRRegion] == nil {
			t.Fatalf("replicas in %v, want %s and %s", keys(regions), tier4PrimaryRegion, tier4DRRegion)
		}
		for region, rep := range regions {
			if pitr, _ := rep["PointInTimeRecoverySpecification"].(map[string]any); pitr["PointInTimeRecoveryEnabled"] != true {
				t.Errorf("%s replica: PITR %v", region, rep["PointInTimeRecoverySpecification"])
			}
			if rep["DeletionProtectionEnabled"] != true {
				t.Errorf("%s replica: deletion protection %v", region, rep["DeletionProtectionEnabled"])
			}
		}
		drKey := regions[tier4DRRegion]["SSESpecification"].(map[string]any)["KMSMasterKeyId"]
		if !stackOutputFromDR(drKey) {
			t.Errorf("DR replica key %v: want the DR stack's key (weak cross-region reference)", drKey)
		}
		if pk := flatten(regions[tier4PrimaryRegion]["SSESpecification"]); !strings.Contains(pk, "VotesKey") {
			t.Errorf("primary replica key %s: want the primary's own key", pk)
		}
	}
}

// The load balancer's access logs and the pages' static assets replicate
// to the DR region within 15 minutes (replication time control, with
// metrics), delete markers too, each into its own encrypted, versioned,
// retained DR bucket.
func TestTier4BucketReplication(t *testing.T) {
	sources := map[string]map[string]any{}
	for id, b := range defaults.resources(t, tier4, "AWS::S3::Bucket") {
		if props(b)["ReplicationConfiguration"] != nil {
			sources[id] = props(b)
		}
	}
	want := map[string]string{"EntryLogs": "LoadBalancerLogReplicaBucket", "StaticAssetsStatic": "StaticAssetReplicaBucket"}
	if len(sources) != len(want) {
		t.Fatalf("replicated buckets %v, want the load balancer's logs and the static assets", keys(sources))
	}
	for id, source := range sources {
		var replicaPrefix string
		for prefix, r := range want {
			if strings.HasPrefix(id, prefix) {
				replicaPrefix = r
			}
		}
		if replicaPrefix == "" {
			t.Errorf("bucket %s replicates: not one of %v", id, keys(want))
			continue
		}
		if v, _ := source["VersioningConfiguration"].(map[string]any); v["Status"] != "Enabled" {
			t.Errorf("%s versioning %v", id, source["VersioningConfiguration"])
		}
		rules := source["ReplicationConfiguration"].(map[string]any)["Rules"].([]any)
		if len(rules) != 1 {
			t.Fatalf("%s: %d replication rules", id, len(rules))
		}
		rule := rules[0].(map[string]any)
		dest := rule["Destination"].(map[string]any)
		if rule["Status"] != "Enabled" || !stackOutputFromDR(dest["Bucket"]) || !strings.Contains(flatten(dest["Bucket"]), replicaPrefix) {
			t.Errorf("%s rule %v: want enabled, to the DR stack's %s", id, rule, replicaPrefix)
		}
		rtc, _ := dest["ReplicationTime"].(map[string]any)
		if rtc["Status"] != "Enabled" || flatten(rtc["Time"]) != `${{"Minutes":15}}` {
			t.Errorf("%s replication time control %v", id, dest["ReplicationTime"])
		}
		if m, _ := dest["Metrics"].(map[string]any); m["Status"] != "Enabled" {
			t.Errorf("%s replication metrics %v", id, dest["Metrics"])
		}
		if dm, _ := rule["DeleteMarkerReplication"].(map[string]any); dm["Status"] != "Enabled" {
			t.Errorf("%s delete marker replication %v", id, rule["DeleteMarkerReplication"])
		}
		if enc, _ := dest["EncryptionConfiguration"].(map[string]any); !stackOutputFromDR(enc["ReplicaKmsKeyID"]) {
			t.Errorf("%s replica key %v: want the DR bucket's key", id, dest["EncryptionConfiguration"])
		}
	}
	for id, replica := range defaults.resources(t, tier4DR, "AWS::S3::Bucket") {
		rp := props(replica)
		if v, _ := rp["VersioningConfiguration"].(map[string]any); v["Status"] != "Enabled" {
			t.Errorf("%s versioning %v", id, rp["VersioningConfiguration"])
		}
		if !strings.Contains(flatten(rp["BucketEncryption"]), "aws:kms") || replica["DeletionPolicy"] != "Retain" {
			t.Errorf("%s encryption %s, deletion policy %v", id, flatten(rp["BucketEncryption"]), replica["DeletionPolicy"])
		}
	}
}

// The pages' assets: one CloudFront distribution whose origin group fails
// over from the primary's bucket to the DR replica; the primary's pages
// link their assets there and start only after the upload; a warm DR
// region's pages serve their own (nothing made in the primary is needed
// there in a failover).
func TestTier4StaticAssetsOnCloudFront(t *testing.T) {
	_, dist := full.only(t, tier4, "AWS::CloudFront::Distribution")
	cfg := flatten(props(dist)["DistributionConfig"])
	if !strings.Contains(cfg, "OriginGroups") || !strings.Contains(cfg, "StaticAssetReplicaBucket") || !strings.Contains(cfg, "StaticAssetsStatic") {
		t.Errorf("distribution %s: want an origin group over the primary bucket and the DR replica", cfg)
	}
	staticURL := func(stack, svc string) string {
		d := manifestsOf(t, full, stack)["Deployment/ladder/"+svc]
		for _, e := range d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["env"].([]any) {
			if ev := e.(map[string]any); ev["name"] == "STATIC_BASE_URL" {
				v, _ := ev["value"].(string)
				return v
			}
		}
		return ""
	}
	for _, svc := range []string{"vote", "result"} {
		if got := staticURL(tier4, svc); got != "https://TOKEN" {
			t.Errorf("primary %s STATIC_BASE_URL %q, want https://<the distribution's domain>", svc, got)
		}
		if got := staticURL(tier4DR, svc); got != "" {
			t.Errorf("DR %s STATIC_BASE_URL %q, want none", svc, got)
		}
	}
	// Every app manifest of the primary waits for both uploads.
	var uploads []string
	for id := range full.resources(t, tier4, "Custom::CDKBucketDeployment") {
		uploads = append(uploads, id)
	}
	if len(uploads) != 2 {
		t.Fatalf("asset uploads %v", uploads)
	}
	for id, r := range full.resources(t, tier4, "Custom::AWSCDK-EKS-KubernetesResource") {
		deps := flatten(r["DependsOn"])
		for _, u := range uploads {
			if !strings.Contains(deps, u) && !strings.Contains(flatten(props(r)["Manifest"]), `"kind":"Namespace"`) {
				t.Errorf("manifest %s does not wait for %s", id, u)
			}
		}
	}
}

// The table is backed up daily and every backup is copied to the DR
// stack's vault; both vaults are retained and encrypted with their own
// keys; no vault lock unless asked (backupVaultLockDays).
func TestTier4BackupCopiedToDR(t *testing.T) {
	_, plan := defaults.only(t, tier4, "AWS::Backup::BackupPlan")
	rules := props(plan)["BackupPlan"].(map[string]any)["BackupPlanRule"].([]any)
	if len(rules) != 1 {
		t.Fatalf("%d backup rules", len(rules))
	}
	copies, _ := rules[0].(map[string]any)["CopyActions"].([]any)
	if len(copies) != 1 {
		t.Fatalf("copy actions %v", copies)
	}
	cp := copies[0].(map[string]any)
	if !stackOutputFromDR(cp["DestinationBackupVaultArn"]) {
		t.Errorf("copy destination %v: want the DR stack's vault", cp["DestinationBackupVaultArn"])
	}
	if flatten(cp["Lifecycle"]) != `${{"DeleteAfterDays":14}}` {
		t.Errorf("copies kept %s, want backupRetentionDays (14)", flatten(cp["Lifecycle"]))
	}
	_, sel := defaults.only(t, tier4, "AWS::Backup::BackupSelection")
	if r := flatten(props(sel)["BackupSelection"].(map[string]any)["Resources"]); !strings.Contains(r, "VotesTable") {
		t.Errorf("backup selection %s: want the votes table", r)
	}
	for _, stack := range []string{tier4, tier4DR} {
		_, vault := defaults.only(t, stack, "AWS::Backup::BackupVault")
		if vault["DeletionPolicy"] != "Retain" || props(vault)["EncryptionKeyArn"] == nil {
			t.Errorf("%s vault: deletion policy %v, key %v", stack, vault["DeletionPolicy"], props(vault)["EncryptionKeyArn"])
		}
		if props(vault)["LockConfiguration"] != nil {
			t.Errorf("%s vault locked by default: %v", stack, props(vault)["LockConfiguration"])
		}
	}

	locked := synthTier4(t, map[string]any{"backupVaultLockDays": "7"})
	for _, stack := range []string{tier4, tier4DR} {
		_, vault := locked.only(t, stack, "AWS::Backup::BackupVault")
		if flatten(props(vault)["LockConfiguration"]) != `${{"MinRetentionDays":7}}` {
			t.Errorf("%s vault lock %s, want 7 days (governance mode)", stack, flatten(props(vault)["LockConfiguration"]))
		}
	}
}

// synthTier4 synthesizes Tier 4 alone with extra context.
func synthTier4(t *testing.T, extra map[string]any) *synthesized {
	t.Helper()
	ctx := map[string]any{"tier": "4"}
	for k, v := range extra {
		ctx[k] = v
	}
	app := newApp(ctx)
	l, _, err := ladder.New(app, repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	asm := app.Synth(nil)
	out := &synthesized{stacks: l.Stacks, templates: map[string]map[string]any{}}
	for name := range l.Stacks {
		out.templates[name] = asm.GetStackByName(str(name)).Template().(map[string]any)
	}
	return out
}

// Pilot light: the DR region holds the data and nothing that runs; warm:
// it runs the same app as the primary.
func TestTier4DRModes(t *testing.T) {
	for _, typ := range []string{"AWS::EKS::Cluster", "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElastiCache::ReplicationGroup", "AWS::EC2::VPC", "AWS::Route53::HealthCheck"} {
		if n := len(defaults.resources(t, tier4DR, typ)); n != 0 {
			t.Errorf("pilot-light DR has %d %s", n, typ)
		}
		if n := len(full.resources(t, tier4DR, typ)); n == 0 {
			t.Errorf("warm DR has no %s", typ)
		}
		if n := len(defaults.resources(t, tier4, typ)); n == 0 {
			t.Errorf("primary has no %s", typ)
		}
	}
	for _, typ := range []string{"AWS::KMS::Key", "AWS::S3::Bucket", "AWS::Backup::BackupVault"} {
		if len(defaults.resources(t, tier4DR, typ)) == 0 {
			t.Errorf("pilot-light DR lacks %s", typ)
		}
	}
}

// With a domain, vote.<domain> and result.<domain> are failover aliases:
// PRIMARY to the primary's load balancer, SECONDARY to the warm DR's, each
// with its region's health check; without a domain there are no records
// and the health check probes the load balancer's own name.
func TestTier4FailoverRecordsAndHealthChecks(t *testing.T) {
	for _, c := range []struct {
		stack, role, region string
	}{{tier4, "PRIMARY", tier4PrimaryRegion}, {tier4DR, "SECONDARY", tier4DRRegion}} {
		records := full.resources(t, c.stack, "AWS::Route53::RecordSet")
		names := map[string]bool{}
		for id, r := range records {
			p := props(r)
			names[p["Name"].(string)] = true
			if p["Failover"] != c.role || p["SetIdentifier"] != c.region || p["Type"] != "A" {
				t.Errorf("%s %s: failover %v set %v type %v", c.stack, id, p["Failover"], p["SetIdentifier"], p["Type"])
			}
			alias := p["AliasTarget"].(map[string]any)
			if alias["EvaluateTargetHealth"] != true || !strings.Contains(flatten(alias["DNSName"]), "EntryLoadBalancer") {
				t.Errorf("%s %s: alias %v", c.stack, id, alias)
			}
			hc := flatten(p["HealthCheckId"])
			if !strings.Contains(hc, "EntryRegionHealth") {
				t.Errorf("%s %s: health check %s, want the region's", c.stack, id, hc)
			}
		}
		if !names["vote.vote.example.com."] || !names["result.vote.example.com."] || len(names) != 2 {
			t.Errorf("%s records %v", c.stack, names)
		}
		checks := map[string]map[string]any{}
		for id, hc := range full.resources(t, c.stack, "AWS::Route53::HealthCheck") {
			checks[id] = props(hc)["HealthCheckConfig"].(map[string]any)
		}
		var calculated, vote, result map[string]any
		for id, cfg := range checks {
			switch {
			case strings.HasPrefix(id, "EntryRegionHealth"):
				calculated = cfg
			case strings.HasPrefix(id, "EntryVoteHealth"):
				vote = cfg
			case strings.HasPrefix(id, "EntryResultHealth"):
				result = cfg
			}
		}
		if calculated == nil || vote == nil || result == nil {
			t.Fatalf("%s health checks %v", c.stack, keys(checks))
		}
		if calculated["Type"] != "CALCULATED" || calculated["HealthThreshold"] != 2.0 || len(calculated["ChildHealthChecks"].([]any)) != 2 {
			t.Errorf("%s region health %v: want both children healthy", c.stack, calculated)
		}
		if vote["Type"] != "HTTPS" || vote["ResourcePath"] != "/readyz" || vote["Port"] != 443.0 ||
			!strings.Contains(flatten(vote["FullyQualifiedDomainName"]), "EntryLoadBalancer") {
			t.Errorf("%s vote health %v: want HTTPS /readyz on the region's load balancer", c.stack, vote)
		}
		if result["Type"] != "CLOUDWATCH_METRIC" || result["InsufficientDataHealthStatus"] != "Unhealthy" {
			t.Errorf("%s result health %v", c.stack, result)
		}
	}
	if n := len(defaults.resources(t, tier4, "AWS::Route53::RecordSet")); n != 0 {
		t.Errorf("no domain, yet %d records", n)
	}
	for _, hc := range defaults.resources(t, tier4, "AWS::Route53::HealthCheck") {
		cfg := props(hc)["HealthCheckConfig"].(map[string]any)
		if cfg["Type"] == "HTTP" && (cfg["ResourcePath"] != "/readyz" || cfg["Port"] != 80.0) {
			t.Errorf("no-domain vote health %v", cfg)
		}
	}
}

// Someone hears when Route53 calls a region unhealthy, from us-east-1 (the
// only region with the metric, and not the failing region's own topic):
// one alarm per region that has an entry, on that region's health check.
func TestTier4HealthAlarms(t *testing.T) {
	for _, c := range []struct {
		set     *synthesized
		regions map[string]string // alarm id prefix -> the stack whose health check it reads
	}{
		{defaults, map[string]string{"UsWest2": tier4}},
		{full, map[string]string{"UsWest2": tier4, "UsEast2": tier4DR}},
	} {
		if r := *c.set.stacks[tier4HealthAlarms].Region(); r != "us-east-1" {
			t.Errorf("health alarms in %s, want us-east-1", r)
		}
		alarms := c.set.resources(t, tier4HealthAlarms, "AWS::CloudWatch::Alarm")
		if len(alarms) != len(c.regions) {
			t.Fatalf("%d health alarms, want %d", len(alarms), len(c.regions))
		}
		for id, a := range alarms {
			p := props(a)
			var stack string
			for prefix, st := range c.regions {
				if strings.HasPrefix(id, prefix) {
					stack = st
				}
			}
			dims := flatten(p["Dimensions"])
			if stack == "" || p["Namespace"] != "AWS/Route53" || p["MetricName"] != "HealthCheckStatus" ||
				!strings.Contains(dims, `"StackName":"`+stack+`"`) || !strings.Contains(dims, "EntryRegionHealth") {
				t.Errorf("%s: %s %s on %s, want HealthCheckStatus of %s's region health check", id, p["Namespace"], p["MetricName"], dims, stack)
			}
			if p["ComparisonOperator"] != "LessThanThreshold" || p["Threshold"] != 1.0 || p["TreatMissingData"] != "breaching" || len(asList(p["AlarmActions"])) != 1 {
				t.Errorf("%s: %v", id, p)
			}
		}
	}
}

// The app in each region: worker and result use the DynamoDB store in
// their own region, bound to the CloudFormation target groups (no
// Ingress), and their pod roles may make exactly the store's calls on that
// region's table.
func TestTier4AppUsesDynamoDBAndTargetGroups(t *testing.T) {
	for _, c := range []struct {
		stack, region string
	}{{tier4, tier4PrimaryRegion}, {tier4DR, tier4DRRegion}} {
		objs := manifestsOf(t, full, c.stack)
		for key, o := range objs {
			if _, err := k8sapp.Decode(o); err != nil {
				t.Errorf("%s %s: %v", c.stack, key, err)
			}
			if strings.HasPrefix(key, "Ingress/") {
				t.Errorf("%s has %s: Tier 4's load balancer is CloudFormation's", c.stack, key)
			}
		}
		// Bindings are named <service>-<revision of the target groups>:
		// the controller refuses to rebind one to a replaced group.
		for _, svc := range []string{"vote", "result"} {
			var tgb map[string]any
			for key, o := range objs {
				if name, ok := strings.CutPrefix(key, "TargetGroupBinding/ladder/"+svc+"-"); ok && len(name) == 8 {
					tgb = o
				}
			}
			if tgb == nil {
				t.Fatalf("%s: no TargetGroupBinding %s-<revision>", c.stack, svc)
			}
			if spec := tgb["spec"].(map[string]any); spec["targetType"] != "ip" || flatten(spec["serviceRef"]) != `${{"name":"`+svc+`","port":80}}` {
				t.Errorf("%s %s binding %v", c.stack, svc, spec)
			}
		}
		for _, svc := range []string{"worker", "result"} {
			env := map[string]string{}
			d := objs["Deployment/ladder/"+svc]
			containers := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
			for _, e := range containers[0].(map[string]any)["env"].([]any) {
				ev := e.(map[string]any)
				v, _ := ev["value"].(string)
				env[ev["name"].(string)] = v
			}
			if env["STORE"] != "dynamodb" || env["DYNAMODB_TABLE"] != tier4Table {
				t.Errorf("%s %s: STORE=%q DYNAMODB_TABLE=%q", c.stack, svc, env["STORE"], env["DYNAMODB_TABLE"])
			}
			// Both regions' workers obey the table's writer flag, which
			// names the primary until someone moves it.
			if want := map[string]string{"worker": tier4PrimaryRegion}[svc]; env["DYNAMODB_DEFAULT_WRITER_REGION"] != want {
				t.Errorf("%s %s: DYNAMODB_DEFAULT_WRITER_REGION=%q, want %q", c.stack, svc, env["DYNAMODB_DEFAULT_WRITER_REGION"], want)
			}
			for name := range env {
				if strings.HasPrefix(name, "DATABASE_") {
					t.Errorf("%s %s has %s: Tier 4 has no PostgreSQL", c.stack, svc, name)
				}
			}
		}
		// The pod roles' DynamoDB grants, on the table in this region:
		// worker the three calls the store makes, result only the reads.
		var ddb []map[string]any
		for _, st := range policyStatements(full, t, c.stack) {
			if strings.Contains(flatten(st["Action"]), "dynamodb:") {
				ddb = append(ddb, st)
			}
		}
		if len(ddb) != 2 {
			t.Fatalf("%s: %d DynamoDB statements, want one per worker and result role", c.stack, len(ddb))
		}
		var grants []string
		for _, st := range ddb {
			actions := asList(st["Action"])
			var names []string
			for _, a := range actions {
				names = append(names, a.(string))
			}
			slices.Sort(names)
			grants = append(grants, strings.Join(names, " "))
			res := flatten(st["Resource"])
			if !strings.Contains(res, ":dynamodb:"+c.region+":") || !strings.HasSuffix(res, ":table/"+tier4Table) {
				t.Errorf("%s DynamoDB resource %s: want the table in %s", c.stack, res, c.region)
			}
		}
		slices.Sort(grants)
		if got := strings.Join(grants, " | "); got != "dynamodb:BatchGetItem dynamodb:GetItem | dynamodb:BatchGetItem dynamodb:GetItem dynamodb:UpdateItem" {
			t.Errorf("%s DynamoDB grants %s: want result read-only, worker read and update", c.stack, got)
		}
	}
}

// The load balancer: deletion protection from the configuration, invalid
// headers dropped, access logs on, /metrics answered 404 on every
// listener, a web ACL in front, and the pods reachable from it on their
// two ports only.
func TestTier4LoadBalancer(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		_, lb := set.only(t, tier4, "AWS::ElasticLoadBalancingV2::LoadBalancer")
		attrs := map[string]any{}
		for _, a := range props(lb)["LoadBalancerAttributes"].([]any) {
			m := a.(map[string]any)
			attrs[m["Key"].(string)] = m["Value"]
		}
		for k, want := range map[string]any{"deletion_protection.enabled": "true", "routing.http.drop_invalid_header_fields.enabled": "true", "access_logs.s3.enabled": "true"} {
			if attrs[k] != want {
				t.Errorf("load balancer %s = %v, want %v", k, attrs[k], want)
			}
		}
		listeners := set.resources(t, tier4, "AWS::ElasticLoadBalancingV2::Listener")
		hidden := 0
		for _, r := range set.resources(t, tier4, "AWS::ElasticLoadBalancingV2::ListenerRule") {
			p := props(r)
			if strings.Contains(flatten(p["Conditions"]), "/metrics") && strings.Contains(flatten(p["Actions"]), "fixed-response") {
				hidden++
			}
		}
		// With a domain the port-80 listener only redirects to HTTPS.
		want := len(listeners)
		if set == full {
			want--
		}
		if hidden != want {
			t.Errorf("%d listeners serve the app, %d hide /metrics", want, hidden)
		}
		// WAF in front of the load balancer: Tier 2's rules, but /readyz
		// stays reachable for Route53's health checkers.
		_, acl := set.only(t, tier4, "AWS::WAFv2::WebACL")
		rules := flatten(props(acl)["Rules"])
		if props(acl)["Scope"] != "REGIONAL" || !strings.Contains(rules, `"SearchString":"/metrics"`) || strings.Contains(rules, "/readyz") ||
			!strings.Contains(rules, "AWSManagedRulesCommonRuleSet") || !strings.Contains(rules, `"SearchString":"POST"`) {
			t.Errorf("web ACL %s: want REGIONAL, /metrics hidden, /readyz open, the POST rate limit and managed rules", rules)
		}
		_, assoc := set.only(t, tier4, "AWS::WAFv2::WebACLAssociation")
		if !strings.Contains(flatten(props(assoc)["ResourceArn"]), "EntryLoadBalancer") || !strings.Contains(flatten(props(assoc)["WebACLArn"]), "EntryWebAcl") {
			t.Errorf("web ACL association %v", props(assoc))
		}
		ports := map[float64]bool{}
		for _, r := range set.resources(t, tier4, "AWS::EC2::SecurityGroupIngress") {
			p := props(r)
			if strings.Contains(flatten(p["SourceSecurityGroupId"]), "EntrySecurityGroup") {
				if p["FromPort"] != p["ToPort"] {
					t.Errorf("load balancer to pods: a port range %v-%v", p["FromPort"], p["ToPort"])
				}
				ports[p["FromPort"].(float64)] = true
			}
		}
		if len(ports) != 2 || !ports[k8sapp.VotePort] || !ports[k8sapp.ResultPort] {
			t.Errorf("load balancer reaches the pods on %v, want %d and %d", ports, k8sapp.VotePort, k8sapp.ResultPort)
		}
	}
}
