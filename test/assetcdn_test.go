package test

// Tier 4's static assets, specified on a small app of its own wired as the
// rung wires it: a DR stack in us-west-2 holding the assets' replica
// bucket (deployed first), and a primary stack in us-east-1 with the
// asset bucket replicating to it and the distribution failing over to it.
// Both set CrossRegionReferences, so DR values reach the primary as weak
// references (Fn::GetStackOutput with Region). Synthesized once per test
// binary, under cdk.json's feature flags and cdk-nag's AwsSolutions checks
// (an unsuppressed finding fails synth, and with it every test here).

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ladder-cdk/ladder/stacks"
)

const (
	acPrimary = "AssetCdnTest"
	acDR      = "AssetCdnTestDR"
	acDRRegn  = "us-west-2"
	acLogDays = 30
)

type assetCdnFixture struct {
	*synthesized
	// logical ids
	bucket, logBucket, replica, replicaKey, oac string
}

var assetCdnSynth = fixture("asset CDN", buildAssetCdn)

func buildAssetCdn(app awscdk.App) (*assetCdnFixture, error) {
	stack := func(name, region string) awscdk.Stack {
		return awscdk.NewStack(app, jsii.String(name), &awscdk.StackProps{
			StackName:             jsii.String(name),
			Env:                   &awscdk.Environment{Region: jsii.String(region)},
			CrossRegionReferences: jsii.Bool(true),
		})
	}
	dr := stack(acDR, acDRRegn)
	primary := stack(acPrimary, "us-east-1")
	replica := stacks.NewAssetReplicaBucket(dr, "StaticReplica")
	alarms := stacks.NewAlarmTopic(primary, "Alarms", stacks.AlarmTopicProps{})
	cdn := stacks.NewAssetCdn(primary, "Assets", stacks.AssetCdnProps{
		VoteStaticDir:           filepath.Join(repoRoot(), "services/internal/votepage/static"),
		ResultStaticDir:         filepath.Join(repoRoot(), "services/internal/resultpage/static"),
		ReplicaBucketArn:        replica.Bucket.BucketArn(),
		ReplicaBucketName:       replica.Bucket.BucketName(),
		ReplicaBucketDomainName: replica.Bucket.BucketRegionalDomainName(),
		ReplicaKeyArn:           replica.Key.KeyArn(),
		ReplicaRegion:           acDRRegn,
		LogRetentionDays:        acLogDays,
		AlarmAction:             alarms.Action,
	})
	awscdk.NewCfnOutput(primary, jsii.String("StaticBaseUrl"), &awscdk.CfnOutputProps{Value: cdn.URL})
	primary.AddStackDependency(dr, jsii.String("the replica bucket"))

	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	asm := app.Synth(nil)
	f := &assetCdnFixture{synthesized: &synthesized{
		stacks:    map[string]awscdk.Stack{acPrimary: primary, acDR: dr},
		templates: map[string]map[string]any{},
	}}
	for _, name := range []string{acPrimary, acDR} {
		tpl, ok := asm.GetStackByName(jsii.String(name)).Template().(map[string]any)
		if !ok {
			return nil, fmt.Errorf("stack %s: template is not a JSON object", name)
		}
		f.templates[name] = tpl
	}
	id := func(c any) string {
		el := c.(awscdk.CfnElement)
		return fmt.Sprint(el.Stack().Resolve(el.Stack().GetLogicalId(el)))
	}
	f.bucket = id(cdn.Bucket.Node().DefaultChild())
	f.logBucket = id(cdn.LogBucket.Node().DefaultChild())
	f.replica = id(replica.Bucket.Node().DefaultChild())
	f.replicaKey = id(replica.Key.Node().DefaultChild())
	for _, child := range *cdn.Node().Children() {
		if *child.Node().Id() == "Oac" {
			f.oac = id(child.Node().DefaultChild())
		}
	}
	return f, nil
}

// fromDR checks that v is read from the DR stack in the DR region (a weak
// cross-region reference) and returns what that output holds there.
func (f *assetCdnFixture) fromDR(t *testing.T, what string, v any) any {
	t.Helper()
	m, _ := v.(map[string]any)
	ref, _ := m["Fn::GetStackOutput"].(map[string]any)
	if ref == nil || ref["StackName"] != acDR || ref["Region"] != acDRRegn {
		t.Fatalf("%s = %v; want Fn::GetStackOutput of %s in %s", what, v, acDR, acDRRegn)
	}
	out, _ := f.templates[acDR]["Outputs"].(map[string]any)[fmt.Sprint(ref["OutputName"])].(map[string]any)
	if out == nil {
		t.Fatalf("%s reads output %v, which %s does not have", what, ref["OutputName"], acDR)
	}
	return out["Value"]
}

// distribution is the primary stack's only distribution's config.
func (f *assetCdnFixture) distribution(t *testing.T) map[string]any {
	t.Helper()
	_, d := f.only(t, acPrimary, "AWS::CloudFront::Distribution")
	return props(d)["DistributionConfig"].(map[string]any)
}

func TestAssetCdn_SynthesizesCdkNagClean(t *testing.T) {
	// The fixture's synth fails on an unsuppressed AwsSolutions error;
	// warnings (CFR1, CFR2) are only annotations, and so is CDK's own
	// about the imported replica's policy, which the construct acknowledges.
	f := assetCdnSynth(t)
	for name, st := range f.stacks {
		ann := assertions.Annotations_FromStack(st)
		for _, m := range msgs(ann.FindError(str("*"), assertions.Match_AnyValue())) {
			t.Errorf("%s: error %v", name, m)
		}
		for _, m := range msgs(ann.FindWarning(str("*"), assertions.Match_AnyValue())) {
			t.Errorf("%s: warning %v", name, m)
		}
	}
}

func TestAssetCdn_OriginGroupFailsOverFromThePrimaryBucketToTheDRReplica(t *testing.T) {
	f := assetCdnSynth(t)
	cfg := f.distribution(t)
	groups := asList(cfg["OriginGroups"].(map[string]any)["Items"])
	if len(groups) != 1 {
		t.Fatalf("origin groups %v; want one", groups)
	}
	g := groups[0].(map[string]any)
	if def := cfg["DefaultCacheBehavior"].(map[string]any); def["TargetOriginId"] != g["Id"] {
		t.Errorf("default behaviour targets %v; want the origin group %v", def["TargetOriginId"], g["Id"])
	}
	want := map[string]any{"StatusCodes": map[string]any{"Items": []any{403, 404, 500, 502, 503, 504}, "Quantity": 6}}
	if !jsonEqual(g["FailoverCriteria"], want) {
		t.Errorf("failover criteria %v; want %v", g["FailoverCriteria"], want)
	}
	members := asList(g["Members"].(map[string]any)["Items"])
	if len(members) != 2 {
		t.Fatalf("group members %v; want the primary and the DR bucket", members)
	}
	// Members are in order: the first is asked first.
	primary := cdnOrigin(t, cfg, members[0].(map[string]any)["OriginId"])
	if !jsonEqual(primary["DomainName"], getAtt(f.bucket, "RegionalDomainName")) {
		t.Errorf("first member's domain %v; want the primary asset bucket %s", primary["DomainName"], f.bucket)
	}
	fallback := cdnOrigin(t, cfg, members[1].(map[string]any)["OriginId"])
	if v := f.fromDR(t, "fallback origin domain", fallback["DomainName"]); !jsonEqual(v, getAtt(f.replica, "RegionalDomainName")) {
		t.Errorf("fallback origin reads %v; want the DR replica's regional domain %s", v, f.replica)
	}
}

func TestAssetCdn_BothOriginsSignWithTheOriginAccessControl(t *testing.T) {
	f := assetCdnSynth(t)
	cfg := f.distribution(t)
	origins := asList(cfg["Origins"])
	if len(origins) != 2 || f.oac == "" {
		t.Fatalf("origins %v, OAC %q; want two origins and an OAC", origins, f.oac)
	}
	for _, o := range origins {
		om := o.(map[string]any)
		if !jsonEqual(om["OriginAccessControlId"], getAtt(f.oac, "Id")) {
			t.Errorf("origin %v: OriginAccessControlId %v; want %s", om["Id"], om["OriginAccessControlId"], f.oac)
		}
		// An empty OAI: the OAC, not a legacy identity, signs.
		if !jsonEqual(om["S3OriginConfig"], map[string]any{"OriginAccessIdentity": ""}) {
			t.Errorf("origin %v: S3OriginConfig %v", om["Id"], om["S3OriginConfig"])
		}
	}
	f.template(t, acPrimary).HasResourceProperties(str("AWS::CloudFront::OriginAccessControl"), obj(map[string]any{
		"OriginAccessControlConfig": obj(map[string]any{
			"OriginAccessControlOriginType": "s3", "SigningBehavior": "always", "SigningProtocol": "sigv4",
		}),
	}))
}

// fromCloudFront is the condition both DR policies put on CloudFront: a
// distribution of this account, whichever (it is made after the DR stack).
// The DR stack's region fixes the partition.
var fromCloudFront = map[string]any{
	"StringEquals": map[string]any{"aws:SourceAccount": map[string]any{"Ref": "AWS::AccountId"}},
	"ArnLike": map[string]any{"AWS:SourceArn": map[string]any{"Fn::Join": []any{"", []any{
		"arn:aws:cloudfront::", map[string]any{"Ref": "AWS::AccountId"}, ":distribution/*",
	}}}},
}

func TestAssetCdn_DRReplicaLetsThisAccountsDistributionsRead(t *testing.T) {
	f := assetCdnSynth(t)
	var grants []map[string]any
	for _, p := range f.resources(t, acDR, "AWS::S3::BucketPolicy") {
		if !jsonEqual(props(p)["Bucket"], map[string]any{"Ref": f.replica}) {
			continue
		}
		for _, st := range asList(props(p)["PolicyDocument"].(map[string]any)["Statement"]) {
			if sm := st.(map[string]any); sm["Effect"] == "Allow" {
				grants = append(grants, sm)
			}
		}
	}
	if len(grants) != 1 {
		t.Fatalf("DR bucket allows %v; want one statement, for CloudFront", grants)
	}
	g := grants[0]
	if !jsonEqual(g["Principal"], map[string]any{"Service": "cloudfront.amazonaws.com"}) || g["Action"] != "s3:GetObject" {
		t.Errorf("grant %v; want s3:GetObject to cloudfront.amazonaws.com", g)
	}
	if want := map[string]any{"Fn::Join": []any{"", []any{getAtt(f.replica, "Arn"), "/*"}}}; !jsonEqual(g["Resource"], want) {
		t.Errorf("grant on %v; want the DR bucket's objects", g["Resource"])
	}
	if !jsonEqual(g["Condition"], fromCloudFront) {
		t.Errorf("grant condition %s; want %s", jsonOf(g["Condition"]), jsonOf(fromCloudFront))
	}

	// Anything written to the replica directly is SSE-KMS under its key:
	// CloudFront may decrypt, under the same conditions.
	key := f.resources(t, acDR, "AWS::KMS::Key")[f.replicaKey]
	var decrypt map[string]any
	for _, st := range asList(props(key)["KeyPolicy"].(map[string]any)["Statement"]) {
		if sm := st.(map[string]any); jsonEqual(sm["Principal"], map[string]any{"Service": "cloudfront.amazonaws.com"}) {
			decrypt = sm
		}
	}
	if decrypt == nil || decrypt["Action"] != "kms:Decrypt" || !jsonEqual(decrypt["Condition"], fromCloudFront) {
		t.Errorf("replica key's CloudFront statement %v; want kms:Decrypt with %s", decrypt, jsonOf(fromCloudFront))
	}
}

func TestAssetCdn_DRReplicaKeepsWhatThePrimaryKeeps(t *testing.T) {
	f := assetCdnSynth(t)
	b := f.resources(t, acDR, "AWS::S3::Bucket")[f.replica]
	if b["DeletionPolicy"] != "Retain" || !jsonEqual(props(b)["VersioningConfiguration"], map[string]any{"Status": "Enabled"}) {
		t.Errorf("DR bucket %v; want retained and versioned", b)
	}
	lc, _ := props(b)["LifecycleConfiguration"].(map[string]any)
	for _, r := range asList(lc["Rules"]) {
		rm := r.(map[string]any)
		// A failover must find every asset the primary serves, however old.
		if rm["ExpirationInDays"] != nil {
			t.Errorf("lifecycle rule %v expires current versions", rm)
		}
		if nc := rm["NoncurrentVersionExpiration"]; nc != nil && !jsonEqual(nc, map[string]any{"NoncurrentDays": stacks.StaticNoncurrentVersionDays}) {
			t.Errorf("noncurrent expiry %v; want %d days, as the primary", nc, stacks.StaticNoncurrentVersionDays)
		}
	}
}

func TestAssetCdn_PrimaryBucketReplicatesToTheDRReplica(t *testing.T) {
	f := assetCdnSynth(t)
	p := props(f.resources(t, acPrimary, "AWS::S3::Bucket")[f.bucket])
	rc, _ := p["ReplicationConfiguration"].(map[string]any)
	rules := asList(rc["Rules"])
	if len(rules) != 1 {
		t.Fatalf("replication rules %v; want one", rules)
	}
	rule := rules[0].(map[string]any)
	dst := rule["Destination"].(map[string]any)
	if rule["Status"] != "Enabled" {
		t.Errorf("rule status %v", rule["Status"])
	}
	if v := f.fromDR(t, "replication destination", dst["Bucket"]); !jsonEqual(v, getAtt(f.replica, "Arn")) {
		t.Errorf("destination reads %v; want the DR replica %s", v, f.replica)
	}
	if !jsonEqual(dst["ReplicationTime"], map[string]any{"Status": "Enabled", "Time": map[string]any{"Minutes": 15}}) {
		t.Errorf("ReplicationTime %v; want RTC, 15 minutes", dst["ReplicationTime"])
	}
	if len(f.resources(t, acPrimary, "AWS::CloudWatch::Alarm")) != 2 {
		t.Errorf("want the replication's failure and latency alarms")
	}
}

func TestAssetCdn_PrimaryBucketIsPrivateVersionedSSES3LoggedAndRetained(t *testing.T) {
	f := assetCdnSynth(t)
	b := f.resources(t, acPrimary, "AWS::S3::Bucket")[f.bucket]
	p := props(b)
	if b["DeletionPolicy"] != "Retain" || !jsonEqual(p["VersioningConfiguration"], map[string]any{"Status": "Enabled"}) {
		t.Errorf("bucket %v; want retained and versioned", b)
	}
	if !strings.Contains(jsonOf(p["BucketEncryption"]), `"SSEAlgorithm":"AES256"`) {
		t.Errorf("encryption %v; want SSE-S3 (CloudFront reads it without a key grant)", p["BucketEncryption"])
	}
	if !jsonEqual(p["PublicAccessBlockConfiguration"], map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}) {
		t.Errorf("public access block %v", p["PublicAccessBlockConfiguration"])
	}
	if !jsonEqual(p["LoggingConfiguration"], map[string]any{"DestinationBucketName": map[string]any{"Ref": f.logBucket}, "LogFilePrefix": "s3/static/"}) {
		t.Errorf("access logs %v; want the log bucket, s3/static/", p["LoggingConfiguration"])
	}
}

func TestAssetCdn_CachesByPathAndVersionOnly(t *testing.T) {
	f := assetCdnSynth(t)
	def := f.distribution(t)["DefaultCacheBehavior"].(map[string]any)
	id, _ := def["CachePolicyId"].(map[string]any)["Ref"].(string)
	policy := f.resources(t, acPrimary, "AWS::CloudFront::CachePolicy")[id]
	if policy == nil {
		t.Fatalf("default behaviour's cache policy %v is not this stack's", def["CachePolicyId"])
	}
	params := props(policy)["CachePolicyConfig"].(map[string]any)["ParametersInCacheKeyAndForwardedToOrigin"].(map[string]any)
	if !jsonEqual(params["QueryStringsConfig"], map[string]any{"QueryStringBehavior": "whitelist", "QueryStrings": []any{"v"}}) {
		t.Errorf("query strings %v; want only v (the content hash) in the key", params["QueryStringsConfig"])
	}
	if !jsonEqual(params["CookiesConfig"], map[string]any{"CookieBehavior": "none"}) || !jsonEqual(params["HeadersConfig"], map[string]any{"HeaderBehavior": "none"}) {
		t.Errorf("cookies %v, headers %v; want none", params["CookiesConfig"], params["HeadersConfig"])
	}
}

func TestAssetCdn_ReadOnlyHTTPSCompressedWithSecurityHeaders(t *testing.T) {
	f := assetCdnSynth(t)
	cfg := f.distribution(t)
	def := cfg["DefaultCacheBehavior"].(map[string]any)
	for k, want := range map[string]any{
		"AllowedMethods":          []any{"GET", "HEAD"},
		"CachedMethods":           []any{"GET", "HEAD"},
		"ViewerProtocolPolicy":    "redirect-to-https",
		"Compress":                true,
		"ResponseHeadersPolicyId": managedSecurityHeadersResponsePolicy,
	} {
		if !jsonEqual(def[k], want) {
			t.Errorf("default behaviour %s = %v; want %v", k, def[k], want)
		}
	}
	if cfg["HttpVersion"] != "http2and3" {
		t.Errorf("HttpVersion %v; want http2and3", cfg["HttpVersion"])
	}
	if len(asList(cfg["CacheBehaviors"])) != 0 {
		t.Errorf("cache behaviours %v; want only the default (static files)", cfg["CacheBehaviors"])
	}
	out := f.templates[acPrimary]["Outputs"].(map[string]any)["StaticBaseUrl"].(map[string]any)
	if got := flatten(out["Value"]); !strings.HasPrefix(got, "https://${") || strings.HasSuffix(got, "/") {
		t.Errorf("URL %s; want https://<distribution domain> without a trailing slash", got)
	}
}

func TestAssetCdn_LogsWithoutCookies(t *testing.T) {
	f := assetCdnSynth(t)
	want := map[string]any{"Bucket": getAtt(f.logBucket, "RegionalDomainName"), "IncludeCookies": false, "Prefix": "cloudfront/static/"}
	if got := f.distribution(t)["Logging"]; !jsonEqual(got, want) {
		t.Errorf("logging %v; want %v", got, want)
	}
}

func TestAssetCdn_DeploysEachPageUnderItsOwnPrefix(t *testing.T) {
	f := assetCdnSynth(t)
	tpl := f.template(t, acPrimary)
	for _, prefix := range []string{"static/vote/", "static/result/"} {
		check(t, "deployment to "+prefix, func() {
			tpl.HasResourceProperties(str("Custom::CDKBucketDeployment"), obj(map[string]any{
				"DestinationBucketName":      map[string]any{"Ref": f.bucket},
				"DestinationBucketKeyPrefix": prefix,
				"Prune":                      true,
				"RetainOnDelete":             true,
			}))
		})
	}
	tpl.ResourceCountIs(str("Custom::CDKBucketDeployment"), jsii.Number(2))
}
