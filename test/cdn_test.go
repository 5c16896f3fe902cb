package test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ladder-cdk/ladder/stacks"
)

// The CDN and edge of Tier 2, specified on a small app of their own: a
// stack in the primary region with a VPC, an internet-facing ALB and the
// origin secret, the CDN construct in it, the us-east-1 edge stack it reads
// the web ACL (and certificate) from, and the us-east-1 alarm stack reading
// the distributions back. Two copies, without and with a domain, are
// synthesized once, under cdk.json's feature flags and cdk-nag, with no
// account for the first.

// cdnFixtureSecret is the origin secret's value in the fixture; the CDN's
// templates must never contain it.
const cdnFixtureSecret = "fixture-origin-secret-4f1c9a"

type cdnVariant struct {
	edge, app, alarms string // stack names
	dns               *stacks.DNSProps
}

var (
	cdnNoDNS = cdnVariant{edge: "CdnTest-Edge", app: "CdnTest", alarms: "CdnTest-EdgeAlarms"}
	cdnDNS   = cdnVariant{edge: "CdnTestDns-Edge", app: "CdnTestDns", alarms: "CdnTestDns-EdgeAlarms",
		dns: &stacks.DNSProps{DomainName: "example.org", HostedZoneID: "Z0CDNTEST0000000000"}}
)

// cdnSynth builds and synthesizes the CDN test app once per test binary.
var cdnSynth = fixture("CDN", buildCdnApp)

func buildCdnApp(app awscdk.App) (out *synthesized, err error) {
	all := map[string]awscdk.Stack{}
	for _, v := range []cdnVariant{cdnNoDNS, cdnDNS} {
		var account *string
		if v.dns != nil {
			account = jsii.String("123456789012")
		}
		edge := stacks.NewEdge(app, v.edge, stacks.EdgeProps{
			StackProps: awscdk.StackProps{StackName: jsii.String(v.edge), Env: &awscdk.Environment{Account: account}},
			DNS:        v.dns,
		})
		st := awscdk.NewStack(app, jsii.String(v.app), &awscdk.StackProps{
			StackName:             jsii.String(v.app),
			Env:                   &awscdk.Environment{Account: account, Region: jsii.String("us-west-2")},
			CrossRegionReferences: jsii.Bool(true),
		})
		net := stacks.NewNetwork(st, "Network", stacks.NetworkProps{MaxAzs: 2, FlowLogRetention: awslogs.RetentionDays_ONE_WEEK})
		sg := awsec2.NewSecurityGroup(st, jsii.String("AlbSg"), &awsec2.SecurityGroupProps{Vpc: net.Vpc, AllowAllOutbound: jsii.Bool(false)})
		alb := awselasticloadbalancingv2.NewApplicationLoadBalancer(st, jsii.String("Alb"), &awselasticloadbalancingv2.ApplicationLoadBalancerProps{
			Vpc: net.Vpc, InternetFacing: jsii.Bool(true), SecurityGroup: sg,
		})
		cdknag.NagSuppressions_AddResourceSuppressions(alb, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-ELB2"), Reason: jsii.String("Test fixture standing in for Tier 2's ALB, which logs."),
		}}, jsii.Bool(true))
		secret := awssecretsmanager.NewSecret(st, jsii.String("OriginSecret"), &awssecretsmanager.SecretProps{
			SecretStringValue: awscdk.SecretValue_UnsafePlainText(jsii.String(cdnFixtureSecret)),
		})
		cdknag.NagSuppressions_AddResourceSuppressions(secret, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-SMG4"), Reason: jsii.String("Test fixture standing in for Tier 2's origin secret."),
		}}, jsii.Bool(true))
		cdn := stacks.NewVoteAppCdn(st, "Cdn", stacks.VoteAppCdnProps{
			LoadBalancer:     alb,
			OriginSecret:     secret,
			WebAclArn:        edge.WebAclArn,
			Certificate:      edge.Certificate,
			DNS:              v.dns,
			VoteStaticDir:    filepath.Join(repoRoot(), "services/internal/votepage/static"),
			ResultStaticDir:  filepath.Join(repoRoot(), "services/internal/resultpage/static"),
			LogRetentionDays: 30,
		})
		awscdk.NewCfnOutput(st, jsii.String("VoteUrl"), &awscdk.CfnOutputProps{Value: cdn.VoteURL})
		awscdk.NewCfnOutput(st, jsii.String("ResultUrl"), &awscdk.CfnOutputProps{Value: cdn.ResultURL})
		email := ""
		if v.dns != nil {
			email = "ops@example.org"
		}
		alarms := stacks.NewEdgeAlarms(app, v.alarms, stacks.EdgeAlarmsProps{
			StackProps: awscdk.StackProps{StackName: jsii.String(v.alarms), Env: &awscdk.Environment{Account: account}},
			Sites:      cdn.Sites(),
			AlarmEmail: email,
		})
		all[v.edge], all[v.app], all[v.alarms] = edge.Stack, st, alarms.Stack
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	asm := app.Synth(nil)
	out = &synthesized{stacks: all, templates: map[string]map[string]any{}}
	for name := range all {
		tpl, ok := asm.GetStackByName(jsii.String(name)).Template().(map[string]any)
		if !ok {
			return nil, fmt.Errorf("stack %s: template is not a JSON object", name)
		}
		out.templates[name] = tpl
	}
	return out, nil
}

// distributions returns the variant's distribution configs keyed by the
// X-Ladder-Site header their ALB origin sends.
func cdnDistributions(t *testing.T, c *synthesized, v cdnVariant) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, d := range c.resources(t, v.app, "AWS::CloudFront::Distribution") {
		cfg := props(d)["DistributionConfig"].(map[string]any)
		site := ""
		for _, o := range asList(cfg["Origins"]) {
			for _, h := range asList(o.(map[string]any)["OriginCustomHeaders"]) {
				if hm := h.(map[string]any); hm["HeaderName"] == stacks.SiteHeader {
					site, _ = hm["HeaderValue"].(string)
				}
			}
		}
		if site == "" {
			t.Fatalf("distribution %s has no %s origin header", id, stacks.SiteHeader)
		}
		out[site] = cfg
	}
	if len(out) != 2 || out["vote"] == nil || out["result"] == nil {
		t.Fatalf("%s: want a vote and a result distribution, have %v", v.app, keys(out))
	}
	return out
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// origin returns the distribution's origin with the given id.
func cdnOrigin(t *testing.T, cfg map[string]any, id any) map[string]any {
	t.Helper()
	for _, o := range asList(cfg["Origins"]) {
		if om := o.(map[string]any); om["Id"] == id {
			return om
		}
	}
	t.Fatalf("no origin %v", id)
	return nil
}

func cdnBehavior(t *testing.T, cfg map[string]any, path string) map[string]any {
	t.Helper()
	for _, b := range asList(cfg["CacheBehaviors"]) {
		if bm := b.(map[string]any); bm["PathPattern"] == path {
			return bm
		}
	}
	t.Fatalf("no cache behavior for %s", path)
	return nil
}

// staticBucketID is the logical id of the bucket behind /static/*.
func cdnStaticBucketID(t *testing.T, cfg map[string]any) string {
	t.Helper()
	o := cdnOrigin(t, cfg, cdnBehavior(t, cfg, "/static/*")["TargetOriginId"])
	ga, _ := o["DomainName"].(map[string]any)["Fn::GetAtt"].([]any)
	if len(ga) != 2 || ga[1] != "RegionalDomainName" {
		t.Fatalf("/static/* origin is not a bucket's regional domain: %v", o["DomainName"])
	}
	return ga[0].(string)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

const (
	managedCachingDisabled                = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	managedAllViewerExceptHostHeader      = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
	managedSecurityHeadersResponsePolicy  = "67f7725c-6f97-4210-82d7-5512b31e9d03"
	managedCachingOptimizedIgnoresQueries = "658327ea-f89d-4fab-a63d-7e88639e58f6"
)

func TestCdn_DynamicPathsGoUncachedToTheALBWithEveryCookieAndHeader(t *testing.T) {
	c := cdnSynth(t)
	for _, v := range []cdnVariant{cdnNoDNS, cdnDNS} {
		for site, cfg := range cdnDistributions(t, c, v) {
			def := cfg["DefaultCacheBehavior"].(map[string]any)
			// CachingDisabled: per-voter pages, POSTs and the event stream
			// are never served from a cache.
			if def["CachePolicyId"] != managedCachingDisabled {
				t.Errorf("%s %s: default behaviour cache policy %v, want CachingDisabled", v.app, site, def["CachePolicyId"])
			}
			// AllViewerExceptHostHeader forwards every cookie (voter_id),
			// query string and header; Host stays the ALB's.
			if def["OriginRequestPolicyId"] != managedAllViewerExceptHostHeader {
				t.Errorf("%s %s: origin request policy %v, want AllViewerExceptHostHeader (cookies forwarded)", v.app, site, def["OriginRequestPolicyId"])
			}
			if def["Compress"] != false {
				t.Errorf("%s %s: dynamic behaviour compresses; the event stream must pass event by event", v.app, site)
			}
			o := cdnOrigin(t, cfg, def["TargetOriginId"])
			albDNS := jsonOf(o["DomainName"])
			if !strings.Contains(albDNS, "DNSName") {
				t.Errorf("%s %s: default origin is not the load balancer: %s", v.app, site, albDNS)
			}
			coc, _ := o["CustomOriginConfig"].(map[string]any)
			if coc["OriginProtocolPolicy"] != "http-only" {
				t.Errorf("%s %s: origin protocol %v", v.app, site, coc["OriginProtocolPolicy"])
			}
			// The ALB's idle timeout is 60 s: CloudFront must let go first.
			if ka, _ := coc["OriginKeepaliveTimeout"].(float64); ka <= 0 || ka >= 60 {
				t.Errorf("%s %s: keep-alive %v, want under the ALB's 60 s idle timeout", v.app, site, coc["OriginKeepaliveTimeout"])
			}
		}
	}
}

func TestCdn_VoteAcceptsPOST_ResultOnlyReads(t *testing.T) {
	c := cdnSynth(t)
	d := cdnDistributions(t, c, cdnNoDNS)
	methods := func(site string) string {
		return jsonOf(d[site]["DefaultCacheBehavior"].(map[string]any)["AllowedMethods"])
	}
	if !strings.Contains(methods("vote"), `"POST"`) {
		t.Errorf("vote site does not allow POST: %s", methods("vote"))
	}
	if m := methods("result"); strings.Contains(m, "POST") || !strings.Contains(m, `"GET"`) {
		t.Errorf("result site methods %s, want GET/HEAD only", m)
	}
}

func TestCdn_ResultStreamOutlivesItsHeartbeat(t *testing.T) {
	c := cdnSynth(t)
	cfg := cdnDistributions(t, c, cdnNoDNS)["result"]
	o := cdnOrigin(t, cfg, cfg["DefaultCacheBehavior"].(map[string]any)["TargetOriginId"])
	read, _ := o["CustomOriginConfig"].(map[string]any)["OriginReadTimeout"].(float64)
	// The result service pings /events every 15 s; the read timeout must
	// ride out more than one lost ping, and no completion timeout may cut a
	// stream CloudFront is relaying.
	if read < 45 {
		t.Errorf("result origin read timeout %v s: an SSE stream with 15 s pings would be cut after one late ping", read)
	}
	if _, set := o["ResponseCompletionTimeout"]; set {
		t.Errorf("result origin has a response completion timeout, which ends live streams: %v", o["ResponseCompletionTimeout"])
	}
}

func TestCdn_ViewersUseHTTPS_HTTPIsRedirected(t *testing.T) {
	c := cdnSynth(t)
	for _, v := range []cdnVariant{cdnNoDNS, cdnDNS} {
		for site, cfg := range cdnDistributions(t, c, v) {
			behaviours := append([]any{cfg["DefaultCacheBehavior"]}, asList(cfg["CacheBehaviors"])...)
			for _, b := range behaviours {
				bm := b.(map[string]any)
				if bm["ViewerProtocolPolicy"] != "redirect-to-https" {
					t.Errorf("%s %s: behaviour %v has viewer protocol %v", v.app, site, bm["PathPattern"], bm["ViewerProtocolPolicy"])
				}
				if bm["ResponseHeadersPolicyId"] != managedSecurityHeadersResponsePolicy {
					t.Errorf("%s %s: behaviour %v lacks the security headers (HSTS) policy", v.app, site, bm["PathPattern"])
				}
			}
		}
	}
}

func TestCdn_OriginSecretIsADynamicReferenceNeverALiteral(t *testing.T) {
	c := cdnSynth(t)
	for _, v := range []cdnVariant{cdnNoDNS, cdnDNS} {
		for site, cfg := range cdnDistributions(t, c, v) {
			o := cdnOrigin(t, cfg, cfg["DefaultCacheBehavior"].(map[string]any)["TargetOriginId"])
			var verify any
			for _, h := range asList(o["OriginCustomHeaders"]) {
				if hm := h.(map[string]any); hm["HeaderName"] == stacks.OriginVerifyHeader {
					verify = hm["HeaderValue"]
				}
			}
			if got := flatten(verify); !strings.HasPrefix(got, "{{resolve:secretsmanager:") || !strings.Contains(got, `"Ref":"`) {
				t.Errorf("%s %s: %s is %q, want a {{resolve:secretsmanager:<secret>...}} dynamic reference", v.app, site, stacks.OriginVerifyHeader, got)
			}
		}
	}
	// Outside the fixture's own Secret resource, no template has the value.
	for name, tpl := range c.templates {
		res := map[string]any{}
		for id, r := range tpl["Resources"].(map[string]any) {
			if r.(map[string]any)["Type"] != "AWS::SecretsManager::Secret" {
				res[id] = r
			}
		}
		if strings.Contains(jsonOf(res)+jsonOf(tpl["Outputs"]), cdnFixtureSecret) {
			t.Errorf("%s: the origin secret's value is in the template", name)
		}
	}
}

func TestCdn_StaticAssetsComeFromAPrivateBucketThroughOAC(t *testing.T) {
	c := cdnSynth(t)
	for _, v := range []cdnVariant{cdnNoDNS, cdnDNS} {
		ds := cdnDistributions(t, c, v)
		bucket := cdnStaticBucketID(t, ds["vote"])
		if other := cdnStaticBucketID(t, ds["result"]); other != bucket {
			t.Errorf("%s: vote and result static assets in different buckets %s, %s", v.app, bucket, other)
		}
		oacID, oac := c.only(t, v.app, "AWS::CloudFront::OriginAccessControl")
		cfg := props(oac)["OriginAccessControlConfig"].(map[string]any)
		if cfg["OriginAccessControlOriginType"] != "s3" || cfg["SigningBehavior"] != "always" || cfg["SigningProtocol"] != "sigv4" {
			t.Errorf("%s: OAC %v", v.app, cfg)
		}
		for site, d := range ds {
			b := cdnBehavior(t, d, "/static/*")
			o := cdnOrigin(t, d, b["TargetOriginId"])
			if jsonOf(o["OriginAccessControlId"]) != jsonOf(map[string]any{"Fn::GetAtt": []any{oacID, "Id"}}) {
				t.Errorf("%s %s: static origin without the OAC: %v", v.app, site, o["OriginAccessControlId"])
			}
			if oai := jsonOf(o["S3OriginConfig"]); strings.Contains(oai, "origin-access-identity") {
				t.Errorf("%s %s: static origin uses a legacy OAI: %s", v.app, site, oai)
			}
			if jsonOf(b["AllowedMethods"]) != `["GET","HEAD"]` {
				t.Errorf("%s %s: static behaviour methods %v", v.app, site, b["AllowedMethods"])
			}
		}

		// Every bucket is private: all four Block Public Access settings.
		for id, bk := range c.resources(t, v.app, "AWS::S3::Bucket") {
			bpa, _ := props(bk)["PublicAccessBlockConfiguration"].(map[string]any)
			for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
				if bpa[k] != true {
					t.Errorf("%s: bucket %s has %s=%v", v.app, id, k, bpa[k])
				}
			}
			if bk["DeletionPolicy"] != "Retain" {
				t.Errorf("%s: bucket %s is not retained", v.app, id)
			}
		}
		st := props(c.resources(t, v.app, "AWS::S3::Bucket")[bucket])
		if jsonOf(st["VersioningConfiguration"]) != `{"Status":"Enabled"}` {
			t.Errorf("%s: static bucket not versioned: %v", v.app, st["VersioningConfiguration"])
		}

		// Its policy: TLS only, and reads only by CloudFront on behalf of
		// this rung's two distributions.
		var policy map[string]any
		for _, p := range c.resources(t, v.app, "AWS::S3::BucketPolicy") {
			if jsonOf(props(p)["Bucket"]) == jsonOf(map[string]any{"Ref": bucket}) {
				policy = props(p)["PolicyDocument"].(map[string]any)
			}
		}
		if policy == nil {
			t.Fatalf("%s: static bucket has no policy", v.app)
		}
		tlsOnly, sources := false, map[string]bool{}
		for _, s := range asList(policy["Statement"]) {
			sm := s.(map[string]any)
			switch sm["Effect"] {
			case "Deny":
				if jsonOf(sm["Condition"]) == `{"Bool":{"aws:SecureTransport":"false"}}` && jsonOf(sm["Principal"]) == `{"AWS":"*"}` {
					tlsOnly = true
				}
			case "Allow":
				if jsonOf(sm["Principal"]) != `{"Service":"cloudfront.amazonaws.com"}` {
					t.Errorf("%s: static bucket grants to %v", v.app, sm["Principal"])
				}
				if jsonOf(sm["Action"]) != `"s3:GetObject"` {
					t.Errorf("%s: static bucket grants CloudFront %v, want s3:GetObject only", v.app, sm["Action"])
				}
				cond, _ := sm["Condition"].(map[string]any)["StringEquals"].(map[string]any)
				src := flatten(cond["AWS:SourceArn"])
				if !strings.Contains(src, ":cloudfront::") || !strings.Contains(src, ":distribution/") {
					t.Errorf("%s: CloudFront grant not scoped to a distribution: %v", v.app, sm["Condition"])
				}
				sources[src] = true
			}
		}
		if !tlsOnly {
			t.Errorf("%s: static bucket policy does not deny non-TLS requests", v.app)
		}
		if len(sources) != 2 {
			t.Errorf("%s: want reads granted to exactly the two distributions, have %v", v.app, keys(sources))
		}
	}
}

func TestCdn_StaticCacheKeyHasTheAssetVersion(t *testing.T) {
	c := cdnSynth(t)
	ds := cdnDistributions(t, c, cdnNoDNS)
	policies := c.resources(t, cdnNoDNS.app, "AWS::CloudFront::CachePolicy")
	for site, d := range ds {
		b := cdnBehavior(t, d, "/static/*")
		if b["CachePolicyId"] == managedCachingOptimizedIgnoresQueries {
			t.Fatalf("%s: /static/* uses CachingOptimized, which drops ?v= from the key: a deploy would keep the old assets", site)
		}
		ref, _ := b["CachePolicyId"].(map[string]any)["Ref"].(string)
		p, ok := policies[ref]
		if !ok {
			t.Fatalf("%s: /static/* cache policy %v is not this stack's", site, b["CachePolicyId"])
		}
		params := props(p)["CachePolicyConfig"].(map[string]any)["ParametersInCacheKeyAndForwardedToOrigin"].(map[string]any)
		if got := jsonOf(params["QueryStringsConfig"]); got != `{"QueryStringBehavior":"whitelist","QueryStrings":["v"]}` {
			t.Errorf("%s: static cache key query strings %s, want exactly v", site, got)
		}
		if jsonOf(params["CookiesConfig"]) != `{"CookieBehavior":"none"}` {
			t.Errorf("%s: static cache key has cookies: %v", site, params["CookiesConfig"])
		}
	}
}

func TestCdn_BothPagesAssetsAreDeployedWithoutPruningEachOther(t *testing.T) {
	c := cdnSynth(t)
	ds := cdnDistributions(t, c, cdnNoDNS)
	bucket := cdnStaticBucketID(t, ds["vote"])
	deployments := c.resources(t, cdnNoDNS.app, "Custom::CDKBucketDeployment")
	prefixes := map[string]bool{}
	for id, d := range deployments {
		p := props(d)
		prefix, _ := p["DestinationBucketKeyPrefix"].(string)
		prefixes[prefix] = true
		if jsonOf(p["DestinationBucketName"]) != jsonOf(map[string]any{"Ref": bucket}) {
			t.Errorf("%s deploys to %v, not the static bucket", id, p["DestinationBucketName"])
		}
		if p["Prune"] != true || p["RetainOnDelete"] != true {
			t.Errorf("%s: Prune %v RetainOnDelete %v", id, p["Prune"], p["RetainOnDelete"])
		}
		if cc := jsonOf(p["SystemMetadata"]); !strings.Contains(cc, `"cache-control":"public, max-age=`) {
			t.Errorf("%s: assets uploaded without a Cache-Control: %s", id, cc)
		}
	}
	// The pages link /static/vote/... and /static/result/...; each
	// deployment prunes only under its own prefix, so neither may be a
	// prefix of the other.
	if len(deployments) != 2 || !prefixes["static/vote/"] || !prefixes["static/result/"] {
		t.Errorf("deployments to %v, want static/vote/ and static/result/", keys(prefixes))
	}
	// The handler's role is its own and narrow: no wildcard action, writes
	// only under the two prefixes.
	for _, st := range policyStatements(c, t, cdnNoDNS.app) {
		for _, a := range asList(st["Action"]) {
			if strings.Contains(a.(string), "*") {
				t.Errorf("wildcard action %v in %v", a, jsonOf(st))
			}
			if a == "s3:PutObject" || a == "s3:DeleteObject" {
				r := flatten(st["Resource"])
				if !strings.HasSuffix(r, "/static/vote/*") && !strings.HasSuffix(r, "/static/result/*") {
					t.Errorf("%s on %s: outside the pages' prefixes", a, r)
				}
			}
		}
	}
}

func TestCdn_LogsGoToAPrivateBucketWithoutCookies(t *testing.T) {
	c := cdnSynth(t)
	for site, d := range cdnDistributions(t, c, cdnNoDNS) {
		l, _ := d["Logging"].(map[string]any)
		if l == nil || l["IncludeCookies"] != false || !strings.Contains(jsonOf(l["Bucket"]), "RegionalDomainName") {
			t.Errorf("%s: logging %v", site, l)
		}
	}
	tpl := cdnSynth(t).template(t, cdnNoDNS.app)
	check(t, "log bucket takes CloudFront's ACL delivery and expires logs", func() {
		tpl.HasResourceProperties(str("AWS::S3::Bucket"), obj(map[string]any{
			"OwnershipControls": obj(map[string]any{"Rules": []any{map[string]any{"ObjectOwnership": "BucketOwnerPreferred"}}}),
			"LifecycleConfiguration": obj(map[string]any{"Rules": arr(obj(map[string]any{
				"ExpirationInDays": 30, "Status": "Enabled",
			}))}),
		}))
	})
}

func TestEdge_WebACLIsAttachedToBothDistributions(t *testing.T) {
	c := cdnSynth(t)
	for _, v := range []cdnVariant{cdnNoDNS, cdnDNS} {
		if r := *c.stacks[v.edge].Region(); r != "us-east-1" {
			t.Errorf("%s is in %s: CloudFront web ACLs and certificates must be in us-east-1", v.edge, r)
		}
		aclID, acl := c.only(t, v.edge, "AWS::WAFv2::WebACL")
		if props(acl)["Scope"] != "CLOUDFRONT" {
			t.Errorf("%s: web ACL scope %v", v.edge, props(acl)["Scope"])
		}
		for site, d := range cdnDistributions(t, c, v) {
			// Read across regions: Fn::GetStackOutput of the edge stack's
			// output holding the ACL's ARN (no account needed at synth).
			acl, _ := d["WebACLId"].(map[string]any)
			ref, _ := acl["Fn::GetStackOutput"].(map[string]any)
			if ref == nil || ref["StackName"] != v.edge || ref["Region"] != "us-east-1" {
				t.Fatalf("%s %s: WebACLId %v is not read from %s in us-east-1", v.app, site, d["WebACLId"], v.edge)
			}
			out, _ := c.templates[v.edge]["Outputs"].(map[string]any)[ref["OutputName"].(string)].(map[string]any)
			if jsonOf(out["Value"]) != jsonOf(map[string]any{"Fn::GetAtt": []any{aclID, "Arn"}}) {
				t.Errorf("%s %s: WebACLId reads output %v = %v, not the web ACL's ARN", v.app, site, ref["OutputName"], out["Value"])
			}
		}
	}
}

func TestEdge_RateLimitsVotePOSTsPerClientIP(t *testing.T) {
	c := cdnSynth(t)
	_, acl := c.only(t, cdnNoDNS.edge, "AWS::WAFv2::WebACL")
	var rate map[string]any
	for _, r := range asList(props(acl)["Rules"]) {
		if st, ok := r.(map[string]any)["Statement"].(map[string]any)["RateBasedStatement"].(map[string]any); ok {
			rate = r.(map[string]any)
			if st["AggregateKeyType"] != "IP" || st["Limit"] != float64(stacks.DefaultPostRateLimit) || st["EvaluationWindowSec"] != float64(300) {
				t.Errorf("rate rule %v: want %d per 5 min per client IP", jsonOf(st), stacks.DefaultPostRateLimit)
			}
			bm, _ := st["ScopeDownStatement"].(map[string]any)["ByteMatchStatement"].(map[string]any)
			if jsonOf(bm["FieldToMatch"]) != `{"Method":{}}` || bm["SearchString"] != "POST" || bm["PositionalConstraint"] != "EXACTLY" {
				t.Errorf("rate rule counts %v, want POSTs only", jsonOf(st["ScopeDownStatement"]))
			}
		}
	}
	if rate == nil {
		t.Fatal("no rate-based rule")
	}
	if got := jsonOf(rate["Action"]); got != `{"Block":{"CustomResponse":{"ResponseCode":429}}}` {
		t.Errorf("rate rule action %s, want block with 429", got)
	}
	if rate["Priority"] != float64(1) {
		t.Errorf("rate rule priority %v, want right after the operator-endpoint rule, before the managed groups", rate["Priority"])
	}
}

// /metrics and /readyz answer only inside the VPC: through CloudFront they
// are blocked, however the path is spelled.
func TestEdge_OperatorEndpointsAreNotPublic(t *testing.T) {
	c := cdnSynth(t)
	_, acl := c.only(t, cdnNoDNS.edge, "AWS::WAFv2::WebACL")
	var rule map[string]any
	for _, r := range asList(props(acl)["Rules"]) {
		if r.(map[string]any)["Name"] == "OperatorEndpointsNotPublic" {
			rule = r.(map[string]any)
		}
	}
	if rule == nil {
		t.Fatal("no rule hides the operator endpoints")
	}
	if rule["Priority"] != float64(0) || jsonOf(rule["Action"]) != `{"Block":{"CustomResponse":{"ResponseCode":404}}}` {
		t.Errorf("rule priority %v action %s, want first and a 404 block", rule["Priority"], jsonOf(rule["Action"]))
	}
	stmt := jsonOf(rule["Statement"])
	for _, want := range []string{`"SearchString":"/metrics"`, `"SearchString":"/readyz"`, `"UriPath":{}`, `"STARTS_WITH"`, `"URL_DECODE"`, `"NORMALIZE_PATH"`} {
		if !strings.Contains(stmt, want) {
			t.Errorf("statement lacks %s: %s", want, stmt)
		}
	}
}

func TestEdge_AWSManagedRuleGroupsBlock(t *testing.T) {
	c := cdnSynth(t)
	_, acl := c.only(t, cdnNoDNS.edge, "AWS::WAFv2::WebACL")
	want := map[string]bool{"AWSManagedRulesCommonRuleSet": false, "AWSManagedRulesKnownBadInputsRuleSet": false, "AWSManagedRulesAmazonIpReputationList": false}
	for _, r := range asList(props(acl)["Rules"]) {
		rm := r.(map[string]any)
		mg, ok := rm["Statement"].(map[string]any)["ManagedRuleGroupStatement"].(map[string]any)
		if !ok {
			continue
		}
		if mg["VendorName"] == "AWS" {
			if _, known := want[mg["Name"].(string)]; known {
				want[mg["Name"].(string)] = true
			}
		}
		// Count would only watch; None lets the group's blocks happen.
		if jsonOf(rm["OverrideAction"]) != `{"None":{}}` {
			t.Errorf("%v: override action %v", mg["Name"], rm["OverrideAction"])
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("web ACL lacks %s", name)
		}
	}
	if jsonOf(props(acl)["DefaultAction"]) != `{"Allow":{}}` {
		t.Errorf("default action %v", props(acl)["DefaultAction"])
	}
}

func TestEdge_BlockedRequestsAreLoggedWithoutTheVotersCookie(t *testing.T) {
	c := cdnSynth(t)
	aclID, _ := c.only(t, cdnNoDNS.edge, "AWS::WAFv2::WebACL")
	_, lc := c.only(t, cdnNoDNS.edge, "AWS::WAFv2::LoggingConfiguration")
	if jsonOf(props(lc)["ResourceArn"]) != jsonOf(map[string]any{"Fn::GetAtt": []any{aclID, "Arn"}}) {
		t.Errorf("logging configuration is for %v, not the web ACL", props(lc)["ResourceArn"])
	}
	if got := jsonOf(props(lc)["LoggingFilter"]); !strings.Contains(got, `"DefaultBehavior":"DROP"`) || !strings.Contains(got, `{"ActionCondition":{"Action":"BLOCK"}}`) {
		t.Errorf("WAF log filter %s, want blocked requests kept and the rest dropped", got)
	}
	if got := jsonOf(props(lc)["RedactedFields"]); got != `[{"SingleHeader":{"Name":"cookie"}}]` {
		t.Errorf("WAF log redacts %s, want the cookie header", got)
	}
	lgID, lg := c.only(t, cdnNoDNS.edge, "AWS::Logs::LogGroup")
	if name := flatten(props(lg)["LogGroupName"]); !strings.HasPrefix(name, "aws-waf-logs-") {
		t.Errorf("WAF log group %q: WAF only writes to groups named aws-waf-logs-*", name)
	}
	if dest := flatten(props(lc)["LogDestinationConfigs"]); !strings.Contains(dest, `{"Ref":"`+lgID+`"}`) || strings.HasSuffix(dest, ":*") {
		t.Errorf("WAF logs to %s, want the log group's ARN without :*", dest)
	}
	// The delivery service may write to that group, for this account only.
	_, rp := c.only(t, cdnNoDNS.edge, "AWS::Logs::ResourcePolicy")
	doc := flatten(props(rp)["PolicyDocument"])
	for _, want := range []string{`delivery.logs.amazonaws.com`, `{"Fn::GetAtt":["` + lgID + `","Arn"]}`, `aws:SourceAccount`} {
		if !strings.Contains(doc, want) {
			t.Errorf("log resource policy %s lacks %s", doc, want)
		}
	}
}

func TestEdge_CertificateAndAliasesOnlyWithADomain(t *testing.T) {
	c := cdnSynth(t)
	// Without a domain: CloudFront's own names, no certificate, no records.
	if n := len(c.resources(t, cdnNoDNS.edge, "AWS::CertificateManager::Certificate")); n != 0 {
		t.Errorf("%s: %d certificates without a domain", cdnNoDNS.edge, n)
	}
	for _, typ := range []string{"AWS::Route53::RecordSet", "AWS::Route53::HostedZone"} {
		if n := len(c.resources(t, cdnNoDNS.app, typ)); n != 0 {
			t.Errorf("%s: %d %s without a domain", cdnNoDNS.app, n, typ)
		}
	}
	for site, d := range cdnDistributions(t, c, cdnNoDNS) {
		if d["Aliases"] != nil || jsonOf(d["ViewerCertificate"]) != "null" && !strings.Contains(jsonOf(d["ViewerCertificate"]), "CloudFrontDefaultCertificate") {
			t.Errorf("%s without a domain: aliases %v, certificate %v", site, d["Aliases"], d["ViewerCertificate"])
		}
	}
	outs := c.templates[cdnNoDNS.app]["Outputs"].(map[string]any)
	if u := flatten(outs["VoteUrl"].(map[string]any)["Value"]); !strings.HasPrefix(u, "https://") || !strings.Contains(u, "DomainName") {
		t.Errorf("vote URL without a domain %q, want https://<distribution domain>/", u)
	}

	// With one: a DNS-validated certificate in us-east-1 for both names,
	// used by the distributions, and A/AAAA aliases for both.
	certID, cert := c.only(t, cdnDNS.edge, "AWS::CertificateManager::Certificate")
	p := props(cert)
	if p["DomainName"] != "vote.example.org" || jsonOf(p["SubjectAlternativeNames"]) != `["result.example.org"]` || p["ValidationMethod"] != "DNS" {
		t.Errorf("certificate %v", jsonOf(p))
	}
	if !strings.Contains(jsonOf(p["DomainValidationOptions"]), "Z0CDNTEST0000000000") {
		t.Errorf("certificate not validated in the zone by id: %v", p["DomainValidationOptions"])
	}
	for site, d := range cdnDistributions(t, c, cdnDNS) {
		host := site + ".example.org"
		if jsonOf(d["Aliases"]) != `["`+host+`"]` {
			t.Errorf("%s: aliases %v, want %s", site, d["Aliases"], host)
		}
		vc, _ := d["ViewerCertificate"].(map[string]any)
		arn, _ := vc["AcmCertificateArn"].(map[string]any)
		ref, _ := arn["Fn::GetStackOutput"].(map[string]any)
		if ref == nil || ref["StackName"] != cdnDNS.edge || ref["Region"] != "us-east-1" {
			t.Errorf("%s: certificate %v not read from the edge stack", site, vc["AcmCertificateArn"])
		} else if out := c.templates[cdnDNS.edge]["Outputs"].(map[string]any)[ref["OutputName"].(string)].(map[string]any); jsonOf(out["Value"]) != jsonOf(map[string]any{"Ref": certID}) {
			t.Errorf("%s: certificate output %v is not the certificate", site, out["Value"])
		}
		if vc["MinimumProtocolVersion"] != "TLSv1.2_2021" || vc["SslSupportMethod"] != "sni-only" {
			t.Errorf("%s: viewer TLS %v", site, jsonOf(vc))
		}
	}
	records := map[string]bool{}
	for _, r := range c.resources(t, cdnDNS.app, "AWS::Route53::RecordSet") {
		rp := props(r)
		if rp["HostedZoneId"] != "Z0CDNTEST0000000000" || !strings.Contains(jsonOf(rp["AliasTarget"]), "DomainName") {
			t.Errorf("record %v is not an alias to a distribution in the zone", jsonOf(rp))
		}
		records[fmt.Sprint(rp["Name"], " ", rp["Type"])] = true
	}
	for _, want := range []string{"vote.example.org. A", "vote.example.org. AAAA", "result.example.org. A", "result.example.org. AAAA"} {
		if !records[want] {
			t.Errorf("no %s record; have %v", want, keys(records))
		}
	}
	outs = c.templates[cdnDNS.app]["Outputs"].(map[string]any)
	if u := flatten(outs["ResultUrl"].(map[string]any)["Value"]); u != "https://result.example.org/" {
		t.Errorf("result URL %q", u)
	}
}

func TestEdgeAlarms_CloudFront5xxAndLatencyInUsEast1(t *testing.T) {
	c := cdnSynth(t)
	for _, v := range []cdnVariant{cdnNoDNS, cdnDNS} {
		if r := *c.stacks[v.alarms].Region(); r != "us-east-1" {
			t.Errorf("%s in %s: CloudFront metrics exist only in us-east-1", v.alarms, r)
		}
		distIDs := map[string]bool{}
		for id := range c.resources(t, v.app, "AWS::CloudFront::Distribution") {
			distIDs[id] = true
		}
		seen := map[string]int{}
		for id, a := range c.resources(t, v.alarms, "AWS::CloudWatch::Alarm") {
			p := props(a)
			if p["Namespace"] != "AWS/CloudFront" {
				continue
			}
			seen[p["MetricName"].(string)]++
			dims := map[string]any{}
			for _, d := range asList(p["Dimensions"]) {
				dims[d.(map[string]any)["Name"].(string)] = d.(map[string]any)["Value"]
			}
			if dims["Region"] != "Global" {
				t.Errorf("%s: dimensions %v lack Region=Global: the alarm would never see data", id, jsonOf(dims))
			}
			id2, _ := dims["DistributionId"].(map[string]any)
			ref, _ := id2["Fn::GetStackOutput"].(map[string]any)
			if ref == nil || ref["StackName"] != v.app || ref["Region"] != "us-west-2" {
				t.Errorf("%s: distribution id %v not read from %s", id, dims["DistributionId"], v.app)
			} else {
				out := c.templates[v.app]["Outputs"].(map[string]any)[ref["OutputName"].(string)].(map[string]any)
				if r, _ := out["Value"].(map[string]any)["Ref"].(string); !distIDs[r] {
					t.Errorf("%s: watches %v, not a distribution", id, out["Value"])
				}
			}
			if p["MetricName"] == "OriginLatency" && p["ExtendedStatistic"] != "p99" {
				t.Errorf("%s: latency statistic %v, want p99", id, p["ExtendedStatistic"])
			}
			if p["MetricName"] == "5xxErrorRate" && p["Statistic"] != "Average" {
				t.Errorf("%s: 5xx statistic %v", id, p["Statistic"])
			}
			if !strings.Contains(jsonOf(p["AlarmActions"]), `"Ref"`) {
				t.Errorf("%s notifies nobody", id)
			}
		}
		if seen["5xxErrorRate"] != 2 || seen["OriginLatency"] != 2 {
			t.Errorf("%s: alarms %v, want 5xxErrorRate and OriginLatency for each of the two sites", v.alarms, seen)
		}
		// OriginLatency exists only with the additional metrics on.
		if n := len(c.resources(t, v.app, "AWS::CloudFront::MonitoringSubscription")); n != 2 {
			t.Errorf("%s: %d monitoring subscriptions, want additional metrics on both distributions", v.app, n)
		}
	}
	tpl := c.template(t, cdnDNS.alarms)
	check(t, "alarm e-mail subscribed", func() {
		tpl.HasResourceProperties(str("AWS::SNS::Subscription"), obj(map[string]any{"Protocol": "email", "Endpoint": "ops@example.org"}))
	})
}

// cdk-nag's AWS Solutions pack finds nothing unsuppressed on these stacks.
func TestCdn_CdkNagClean(t *testing.T) {
	c := cdnSynth(t)
	for name, st := range c.stacks {
		ann := assertions.Annotations_FromStack(st)
		for _, f := range msgs(ann.FindError(str("*"), assertions.Match_StringLikeRegexp(str("AwsSolutions-.*")))) {
			t.Errorf("%s: cdk-nag error: %v", name, f)
		}
		for _, f := range msgs(ann.FindWarning(str("*"), assertions.Match_StringLikeRegexp(str("AwsSolutions-.*")))) {
			t.Errorf("%s: cdk-nag warning: %v", name, f)
		}
	}
}
