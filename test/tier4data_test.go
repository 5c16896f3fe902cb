package test

// Tier 4's data protection, specified on a small app of its own wired as
// the rung wires it: a "DR" stack in us-west-2 holding what the primary
// points at (the table replica's key, the replica bucket, the DR backup
// vault), and a primary stack in us-east-1 with the votes global table, a
// replicated source bucket (standing in for the ALB access-log bucket:
// SSE-S3, versioned) and the backup plan copying to the DR vault. Both set
// CrossRegionReferences, so DR values reach the primary as weak references
// (Fn::GetStackOutput with Region). Synthesized once per test binary, under
// cdk.json's feature flags and cdk-nag's AwsSolutions checks (an
// unsuppressed finding fails synth).

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ladder-cdk/ladder/stacks"
)

const (
	t4Primary       = "Tier4DataTest"
	t4DR            = "Tier4DataTestDR"
	t4PrimaryRegion = "us-east-1"
	t4DRRegion      = "us-west-2"
	t4TableName     = "ladder-votes-test"
	// t4LogDays is the source bucket's retention, which the replicas keep.
	t4LogDays = 30
	// t4BackupDays / t4CopyDays: the primary's recovery points and their
	// copies in the DR vault; t4LockDays the primary vault lock's minimum.
	t4BackupDays = 14
	t4CopyDays   = 21
	t4LockDays   = 7
)

type tier4Fixture struct {
	tpl map[string]map[string]any // by stack name
	// logical ids of what the constructs were given or made
	primaryKey, replicaKey, sourceBucket, replicaBucket, replicaBucketKey string
	primaryVault, drVault, servicesRole, drServicesRole                   string
}

var tier4Data = fixture("tier 4 data", buildTier4Data)

func buildTier4Data(app awscdk.App) (f *tier4Fixture, err error) {
	stack := func(name, region string) awscdk.Stack {
		return awscdk.NewStack(app, jsii.String(name), &awscdk.StackProps{
			StackName:             jsii.String(name),
			Env:                   &awscdk.Environment{Region: jsii.String(region)},
			CrossRegionReferences: jsii.Bool(true),
		})
	}
	dr := stack(t4DR, t4DRRegion)
	primary := stack(t4Primary, t4PrimaryRegion)

	// The DR stack: deployed first, it owns what the primary points at.
	replicaKey := stacks.NewTableReplicaKey(dr, "VotesReplicaKey")
	replica := stacks.NewReplicaBucket(dr, "LogReplica", stacks.ReplicaBucketProps{ExpireAfterDays: t4LogDays})
	drVault := stacks.NewBackupVault(dr, "DRVault", stacks.BackupVaultProps{})
	drServices := awsiam.NewRole(dr, jsii.String("ServicesRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("pods.eks.amazonaws.com"), nil),
	})
	// The DR compute reaches its replica by name, with no reference to
	// the primary stack (which does not exist yet when this deploys).
	stacks.GrantVotesTable(drServices, stacks.VotesTableArn(t4TableName, t4DRRegion), replicaKey.KeyArn(), t4DRRegion)

	// The primary.
	alarms := stacks.NewAlarmTopic(primary, "Alarms", stacks.AlarmTopicProps{})
	table := stacks.NewVotesTable(primary, "Votes", stacks.VotesTableProps{
		TableName:          t4TableName,
		ReplicaRegions:     []string{t4DRRegion},
		ReplicaKeyArns:     map[string]*string{t4DRRegion: replicaKey.KeyArn()},
		DeletionProtection: true,
		AlarmAction:        alarms.Action,
	})
	services := awsiam.NewRole(primary, jsii.String("ServicesRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("pods.eks.amazonaws.com"), nil),
	})
	table.Grant(services, t4PrimaryRegion)
	source := awss3.NewBucket(primary, jsii.String("AccessLogs"), &awss3.BucketProps{
		Versioned:         jsii.Bool(true),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	cdknag.NagSuppressions_AddResourceSuppressions(source, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-S1"), Reason: jsii.String("Test stand-in for the ALB access-log bucket, which is itself the log."),
	}}, jsii.Bool(true))
	stacks.ReplicateBucket(primary, "LogReplication", source, stacks.BucketReplicationProps{
		DestinationBucketArn:  replica.Bucket.BucketArn(),
		DestinationBucketName: replica.Bucket.BucketName(),
		DestinationKeyArn:     replica.Key.KeyArn(),
		DestinationRegion:     t4DRRegion,
		AlarmAction:           alarms.Action,
	})
	backup := stacks.NewBackup(primary, "Backup", stacks.BackupProps{
		RetentionDays:     t4BackupDays,
		Resources:         []*string{table.TableArnIn(t4PrimaryRegion)},
		CopyToVaultArn:    drVault.Vault.BackupVaultArn(),
		CopyRetentionDays: t4CopyDays,
		Lock:              stacks.VaultLock{MinRetentionDays: t4LockDays},
	})

	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	asm := app.Synth(nil)
	f = &tier4Fixture{tpl: map[string]map[string]any{}}
	for _, name := range []string{t4Primary, t4DR} {
		tpl, ok := asm.GetStackByName(jsii.String(name)).Template().(map[string]any)
		if !ok {
			return nil, fmt.Errorf("stack %s: template is not a JSON object", name)
		}
		f.tpl[name] = tpl
	}
	id := func(c any) string {
		el := c.(awscdk.CfnElement)
		return fmt.Sprint(el.Stack().Resolve(el.Stack().GetLogicalId(el)))
	}
	f.primaryKey = id(table.Key.Node().DefaultChild())
	f.replicaKey = id(replicaKey.Node().DefaultChild())
	f.sourceBucket = id(source.Node().DefaultChild())
	f.replicaBucket = id(replica.Bucket.Node().DefaultChild())
	f.replicaBucketKey = id(replica.Key.Node().DefaultChild())
	f.primaryVault = id(backup.Vault.Node().DefaultChild())
	f.drVault = id(drVault.Vault.Node().DefaultChild())
	f.servicesRole = id(services.Node().DefaultChild())
	f.drServicesRole = id(drServices.Node().DefaultChild())
	return f, nil
}

func (f *tier4Fixture) resources(stack, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	res, _ := f.tpl[stack]["Resources"].(map[string]any)
	for id, r := range res {
		if m := r.(map[string]any); m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

func (f *tier4Fixture) one(t *testing.T, stack, typ string) (string, map[string]any) {
	t.Helper()
	rs := f.resources(stack, typ)
	if len(rs) != 1 {
		t.Fatalf("%s: want exactly one %s, got %d", stack, typ, len(rs))
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

// fromDR checks that v is read from the DR stack in the DR region (a weak
// cross-region reference) and returns what that output holds there.
func (f *tier4Fixture) fromDR(t *testing.T, what string, v any) any {
	t.Helper()
	m, _ := v.(map[string]any)
	ref, _ := m["Fn::GetStackOutput"].(map[string]any)
	if ref == nil || ref["StackName"] != t4DR || ref["Region"] != t4DRRegion {
		t.Fatalf("%s = %v; want Fn::GetStackOutput of %s in %s", what, v, t4DR, t4DRRegion)
	}
	out, _ := f.tpl[t4DR]["Outputs"].(map[string]any)[fmt.Sprint(ref["OutputName"])].(map[string]any)
	if out == nil {
		t.Fatalf("%s reads output %v, which %s does not have", what, ref["OutputName"], t4DR)
	}
	return out["Value"]
}

func getAtt(id, attr string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }

// replicaIn returns the global table's replica specification for a region.
func replicaIn(t *testing.T, table map[string]any, region string) map[string]any {
	t.Helper()
	for _, r := range asList(props(table)["Replicas"]) {
		if m := r.(map[string]any); m["Region"] == region {
			return m
		}
	}
	t.Fatalf("no replica in %s: %v", region, props(table)["Replicas"])
	return nil
}

func TestTier4Data_GlobalTableReplicatesToTheDRRegion(t *testing.T) {
	f := tier4Data(t)
	_, table := f.one(t, t4Primary, "AWS::DynamoDB::GlobalTable")
	p := props(table)
	var regions []string
	for _, r := range asList(p["Replicas"]) {
		regions = append(regions, fmt.Sprint(r.(map[string]any)["Region"]))
	}
	sort.Strings(regions)
	if want := []string{t4PrimaryRegion, t4DRRegion}; !reflect.DeepEqual(regions, want) {
		t.Errorf("replicas in %v; want %v (the primary and the DR region)", regions, want)
	}
	if p["TableName"] != t4TableName {
		t.Errorf("TableName %v; want the fixed name %q the DR compute uses", p["TableName"], t4TableName)
	}
	// The store's key schema: "pk" (S), no sort key.
	if !jsonEqual(p["KeySchema"], []any{map[string]any{"AttributeName": "pk", "KeyType": "HASH"}}) ||
		!jsonEqual(p["AttributeDefinitions"], []any{map[string]any{"AttributeName": "pk", "AttributeType": "S"}}) {
		t.Errorf("key schema %v %v; want pk (S) only", p["KeySchema"], p["AttributeDefinitions"])
	}
	if p["BillingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode %v; want PAY_PER_REQUEST", p["BillingMode"])
	}
	if !jsonEqual(p["StreamSpecification"], map[string]any{"StreamViewType": "NEW_AND_OLD_IMAGES"}) {
		t.Errorf("StreamSpecification %v; want NEW_AND_OLD_IMAGES", p["StreamSpecification"])
	}
	if len(f.resources(t4DR, "AWS::DynamoDB::GlobalTable")) != 0 || len(f.resources(t4DR, "AWS::DynamoDB::Table")) != 0 {
		t.Error("the DR stack creates a table; the replica belongs to the primary's global table")
	}
}

func TestTier4Data_TableAndReplicaHavePITRDeletionProtectionAndAreRetained(t *testing.T) {
	f := tier4Data(t)
	_, table := f.one(t, t4Primary, "AWS::DynamoDB::GlobalTable")
	for _, region := range []string{t4PrimaryRegion, t4DRRegion} {
		r := replicaIn(t, table, region)
		if !jsonEqual(r["PointInTimeRecoverySpecification"], map[string]any{"PointInTimeRecoveryEnabled": true}) {
			t.Errorf("%s: PITR %v; want enabled", region, r["PointInTimeRecoverySpecification"])
		}
		if r["DeletionProtectionEnabled"] != true {
			t.Errorf("%s: DeletionProtectionEnabled %v; want true", region, r["DeletionProtectionEnabled"])
		}
	}
	// One resource holds every replica: its policies retain all of them.
	if table["DeletionPolicy"] != "Retain" || table["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("DeletionPolicy %v, UpdateReplacePolicy %v; want Retain", table["DeletionPolicy"], table["UpdateReplacePolicy"])
	}
}

func TestTier4Data_TableEncryptedWithARetainedRotatingKeyPerRegion(t *testing.T) {
	f := tier4Data(t)
	_, table := f.one(t, t4Primary, "AWS::DynamoDB::GlobalTable")
	if !jsonEqual(props(table)["SSESpecification"], map[string]any{"SSEEnabled": true, "SSEType": "KMS"}) {
		t.Errorf("SSESpecification %v; want KMS", props(table)["SSESpecification"])
	}
	primary := replicaIn(t, table, t4PrimaryRegion)["SSESpecification"].(map[string]any)["KMSMasterKeyId"]
	if !jsonEqual(primary, getAtt(f.primaryKey, "Arn")) {
		t.Errorf("primary replica key %v; want the primary stack's key %s", primary, f.primaryKey)
	}
	dr := replicaIn(t, table, t4DRRegion)["SSESpecification"].(map[string]any)["KMSMasterKeyId"]
	if v := f.fromDR(t, "DR replica key", dr); !jsonEqual(v, getAtt(f.replicaKey, "Arn")) {
		t.Errorf("DR replica key reads %v; want the DR stack's replica key %s", v, f.replicaKey)
	}
	for stack, id := range map[string]string{t4Primary: f.primaryKey, t4DR: f.replicaKey} {
		k := f.resources(stack, "AWS::KMS::Key")[id]
		if k == nil || k["DeletionPolicy"] != "Retain" || props(k)["EnableKeyRotation"] != true {
			t.Errorf("%s key %s: %v; want retained and rotating", stack, id, k)
		}
	}
}

// statementsOf lists the statements of the IAM policies attached to a role.
func (f *tier4Fixture) statementsOf(stack, role string) []map[string]any {
	var out []map[string]any
	for _, p := range f.resources(stack, "AWS::IAM::Policy") {
		attached := false
		for _, r := range asList(props(p)["Roles"]) {
			if jsonEqual(r, map[string]any{"Ref": role}) {
				attached = true
			}
		}
		if !attached {
			continue
		}
		for _, st := range asList(props(p)["PolicyDocument"].(map[string]any)["Statement"]) {
			out = append(out, st.(map[string]any))
		}
	}
	return out
}

func TestTier4Data_ServicesGetExactlyTheStoresCallsOnTheTableInTheirRegion(t *testing.T) {
	f := tier4Data(t)
	for _, c := range []struct{ stack, region, role, key string }{
		{t4Primary, t4PrimaryRegion, f.servicesRole, f.primaryKey},
		{t4DR, t4DRRegion, f.drServicesRole, f.replicaKey},
	} {
		sts := f.statementsOf(c.stack, c.role)
		if len(sts) != 2 {
			t.Fatalf("%s: %d statements %v; want the table and its key", c.stack, len(sts), sts)
		}
		table, key := sts[0], sts[1]
		if !jsonEqual(table["Action"], []any{"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}) {
			t.Errorf("%s: table actions %v; want the store's GetItem, BatchGetItem, UpdateItem only", c.stack, table["Action"])
		}
		if want := "arn:${{\"Ref\":\"AWS::Partition\"}}:dynamodb:" + c.region + ":${{\"Ref\":\"AWS::AccountId\"}}:table/" + t4TableName; flatten(table["Resource"]) != want {
			t.Errorf("%s: table resource %s; want %s (the table in this region, by name)", c.stack, flatten(table["Resource"]), want)
		}
		if !jsonEqual(key["Action"], []any{"kms:Decrypt", "kms:DescribeKey"}) || !jsonEqual(key["Resource"], getAtt(c.key, "Arn")) {
			t.Errorf("%s: key statement %v; want Decrypt and DescribeKey on %s", c.stack, key, c.key)
		}
		if !jsonEqual(key["Condition"], map[string]any{"StringEquals": map[string]any{"kms:ViaService": "dynamodb." + c.region + ".amazonaws.com"}}) {
			t.Errorf("%s: key condition %v; want use through DynamoDB in %s only", c.stack, key["Condition"], c.region)
		}
	}
}

func TestTier4Data_TableAlarms(t *testing.T) {
	f := tier4Data(t)
	var latency map[string]any
	names := map[string]bool{}
	for _, a := range f.resources(t4Primary, "AWS::CloudWatch::Alarm") {
		p := props(a)
		if p["MetricName"] == "ReplicationLatency" && p["Namespace"] == "AWS/DynamoDB" {
			latency = p
		}
		for _, m := range asList(p["Metrics"]) {
			if ms, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok {
				names[fmt.Sprint(ms["Metric"].(map[string]any)["MetricName"])] = true
			}
		}
		if len(asList(p["AlarmActions"])) != 1 {
			t.Errorf("alarm %v has actions %v; want the alarm topic", p["AlarmDescription"], p["AlarmActions"])
		}
	}
	if latency == nil {
		t.Fatal("no ReplicationLatency alarm")
	}
	dims := map[string]any{}
	for _, d := range asList(latency["Dimensions"]) {
		dims[fmt.Sprint(d.(map[string]any)["Name"])] = d.(map[string]any)["Value"]
	}
	if dims["TableName"] != t4TableName || dims["ReceivingRegion"] != t4DRRegion || latency["Threshold"] != 60000.0 {
		t.Errorf("replication latency alarm %v; want TableName/ReceivingRegion %s and 60 s", latency, t4DRRegion)
	}
	if !names["ThrottledRequests"] || !names["SystemErrors"] {
		t.Errorf("metric-math alarms cover %v; want ThrottledRequests and SystemErrors", names)
	}
}

// replicationRule is the source bucket's only replication rule.
func (f *tier4Fixture) replicationRule(t *testing.T) (map[string]any, map[string]any) {
	t.Helper()
	src := f.resources(t4Primary, "AWS::S3::Bucket")[f.sourceBucket]
	rc, _ := props(src)["ReplicationConfiguration"].(map[string]any)
	rules := asList(rc["Rules"])
	if len(rules) != 1 {
		t.Fatalf("source bucket replication %v; want one rule", rc)
	}
	return rc, rules[0].(map[string]any)
}

func TestTier4Data_SourceBucketReplicatesToTheDRBucketWithinFifteenMinutes(t *testing.T) {
	f := tier4Data(t)
	src := f.resources(t4Primary, "AWS::S3::Bucket")[f.sourceBucket]
	if !jsonEqual(props(src)["VersioningConfiguration"], map[string]any{"Status": "Enabled"}) {
		t.Errorf("source versioning %v; want Enabled", props(src)["VersioningConfiguration"])
	}
	_, rule := f.replicationRule(t)
	dst := rule["Destination"].(map[string]any)
	if rule["Status"] != "Enabled" {
		t.Errorf("rule status %v", rule["Status"])
	}
	if !jsonEqual(dst["ReplicationTime"], map[string]any{"Status": "Enabled", "Time": map[string]any{"Minutes": 15}}) {
		t.Errorf("ReplicationTime %v; want RTC enabled, 15 minutes", dst["ReplicationTime"])
	}
	if !jsonEqual(dst["Metrics"], map[string]any{"Status": "Enabled", "EventThreshold": map[string]any{"Minutes": 15}}) {
		t.Errorf("Metrics %v; want enabled with a 15-minute threshold", dst["Metrics"])
	}
	if !jsonEqual(rule["DeleteMarkerReplication"], map[string]any{"Status": "Enabled"}) {
		t.Errorf("DeleteMarkerReplication %v; want Enabled", rule["DeleteMarkerReplication"])
	}
	if v := f.fromDR(t, "destination bucket", dst["Bucket"]); !jsonEqual(v, getAtt(f.replicaBucket, "Arn")) {
		t.Errorf("destination reads %v; want the DR replica bucket %s", v, f.replicaBucket)
	}
	enc, _ := dst["EncryptionConfiguration"].(map[string]any)
	if v := f.fromDR(t, "replica KMS key", enc["ReplicaKmsKeyID"]); !jsonEqual(v, getAtt(f.replicaBucketKey, "Arn")) {
		t.Errorf("ReplicaKmsKeyID reads %v; want the DR bucket's key %s", v, f.replicaBucketKey)
	}
	if !jsonEqual(rule["SourceSelectionCriteria"], map[string]any{"SseKmsEncryptedObjects": map[string]any{"Status": "Enabled"}}) {
		t.Errorf("SourceSelectionCriteria %v; want SSE-KMS objects replicated too", rule["SourceSelectionCriteria"])
	}
}

func TestTier4Data_ReplicationRoleIsScopedToTheTwoBucketsAndTheDRKey(t *testing.T) {
	f := tier4Data(t)
	rc, _ := f.replicationRule(t)
	roleID := fmt.Sprint(rc["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0])
	role := f.resources(t4Primary, "AWS::IAM::Role")[roleID]
	if !strings.Contains(jsonOf(props(role)["AssumeRolePolicyDocument"]), `"Service":"s3.amazonaws.com"`) {
		t.Errorf("replication role trust %v; want s3.amazonaws.com", props(role)["AssumeRolePolicyDocument"])
	}
	srcArn := jsonOf(getAtt(f.sourceBucket, "Arn"))
	for _, st := range f.statementsOf(t4Primary, roleID) {
		res := jsonOf(st["Resource"])
		for _, a := range asList(st["Action"]) {
			if strings.Contains(fmt.Sprint(a), "*") {
				t.Errorf("wildcard action %v", a)
			}
		}
		switch {
		case res == srcArn || res == jsonOf(map[string]any{"Fn::Join": []any{"", []any{getAtt(f.sourceBucket, "Arn"), "/*"}}}):
			// the source bucket and its objects
		case strings.Contains(res, "Fn::GetStackOutput"):
			v := f.fromDR(t, "replication role resource", firstGetStackOutput(st["Resource"]))
			isBucket, isKey := jsonEqual(v, getAtt(f.replicaBucket, "Arn")), jsonEqual(v, getAtt(f.replicaBucketKey, "Arn"))
			if !isBucket && !isKey {
				t.Errorf("statement %v reaches %v in the DR stack; want only the replica bucket and its key", st, v)
			}
			if isKey && !strings.Contains(jsonOf(st["Condition"]), `"kms:ViaService":"s3.`+t4DRRegion+`.amazonaws.com"`) {
				t.Errorf("DR key statement %v; want it usable only through S3 in %s", st, t4DRRegion)
			}
		default:
			t.Errorf("replication role statement on %s; want only the source bucket, the DR bucket and the DR key", res)
		}
	}
}

// firstGetStackOutput finds the first Fn::GetStackOutput inside v.
func firstGetStackOutput(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["Fn::GetStackOutput"]; ok {
			return x
		}
		for _, e := range x {
			if r := firstGetStackOutput(e); r != nil {
				return r
			}
		}
	case []any:
		for _, e := range x {
			if r := firstGetStackOutput(e); r != nil {
				return r
			}
		}
	}
	return nil
}

func TestTier4Data_DRBucketIsEncryptedVersionedPrivateRetainedAndExpiresWithTheSource(t *testing.T) {
	f := tier4Data(t)
	b := f.resources(t4DR, "AWS::S3::Bucket")[f.replicaBucket]
	p := props(b)
	if b["DeletionPolicy"] != "Retain" || b["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("DR bucket DeletionPolicy %v; want Retain", b["DeletionPolicy"])
	}
	if !jsonEqual(p["VersioningConfiguration"], map[string]any{"Status": "Enabled"}) {
		t.Errorf("DR bucket versioning %v; want Enabled (replication requires it)", p["VersioningConfiguration"])
	}
	sse := jsonOf(p["BucketEncryption"])
	if !strings.Contains(sse, `"SSEAlgorithm":"aws:kms"`) || !strings.Contains(sse, jsonOf(getAtt(f.replicaBucketKey, "Arn"))) {
		t.Errorf("DR bucket encryption %s; want SSE-KMS with its own key", sse)
	}
	k := f.resources(t4DR, "AWS::KMS::Key")[f.replicaBucketKey]
	if k["DeletionPolicy"] != "Retain" || props(k)["EnableKeyRotation"] != true {
		t.Errorf("DR bucket key %v; want retained and rotating", k)
	}
	if !jsonEqual(p["PublicAccessBlockConfiguration"], map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}) {
		t.Errorf("public access block %v", p["PublicAccessBlockConfiguration"])
	}
	var expiry map[string]any
	for _, r := range asList(p["LifecycleConfiguration"].(map[string]any)["Rules"]) {
		if m := r.(map[string]any); m["ExpirationInDays"] != nil {
			expiry = m
		}
	}
	if expiry == nil || expiry["ExpirationInDays"] != float64(t4LogDays) ||
		!jsonEqual(expiry["NoncurrentVersionExpiration"], map[string]any{"NoncurrentDays": t4LogDays}) {
		t.Errorf("lifecycle %v; want current and noncurrent versions expired after %d days", expiry, t4LogDays)
	}
}

func TestTier4Data_BackupRuleCopiesToTheDRVault(t *testing.T) {
	f := tier4Data(t)
	_, plan := f.one(t, t4Primary, "AWS::Backup::BackupPlan")
	rules := asList(props(plan)["BackupPlan"].(map[string]any)["BackupPlanRule"])
	if len(rules) != 1 {
		t.Fatalf("backup rules %v; want one", rules)
	}
	rule := rules[0].(map[string]any)
	copies := asList(rule["CopyActions"])
	if len(copies) != 1 {
		t.Fatalf("CopyActions %v; want one, to the DR vault", rule["CopyActions"])
	}
	cp := copies[0].(map[string]any)
	if v := f.fromDR(t, "copy destination", cp["DestinationBackupVaultArn"]); !jsonEqual(v, getAtt(f.drVault, "BackupVaultArn")) {
		t.Errorf("copy destination reads %v; want the DR vault %s", v, f.drVault)
	}
	if !jsonEqual(cp["Lifecycle"], map[string]any{"DeleteAfterDays": t4CopyDays}) {
		t.Errorf("copy lifecycle %v; want %d days", cp["Lifecycle"], t4CopyDays)
	}
	if !jsonEqual(rule["Lifecycle"], map[string]any{"DeleteAfterDays": t4BackupDays}) {
		t.Errorf("rule lifecycle %v; want %d days", rule["Lifecycle"], t4BackupDays)
	}
	vault := f.resources(t4DR, "AWS::Backup::BackupVault")[f.drVault]
	if vault["DeletionPolicy"] != "Retain" || props(vault)["EncryptionKeyArn"] == nil {
		t.Errorf("DR vault %v; want retained, with its own key", vault)
	}
}

func TestTier4Data_VaultLockOnlyWhenAsked(t *testing.T) {
	f := tier4Data(t)
	primary := props(f.resources(t4Primary, "AWS::Backup::BackupVault")[f.primaryVault])
	// Governance mode by default: no ChangeableForDays, so an admin can
	// still remove the lock.
	if !jsonEqual(primary["LockConfiguration"], map[string]any{"MinRetentionDays": t4LockDays}) {
		t.Errorf("primary vault lock %v; want MinRetentionDays %d, governance mode", primary["LockConfiguration"], t4LockDays)
	}
	if dr := props(f.resources(t4DR, "AWS::Backup::BackupVault")[f.drVault]); dr["LockConfiguration"] != nil {
		t.Errorf("DR vault lock %v; want none when not asked", dr["LockConfiguration"])
	}
}
