package test

// The log search domain (stacks/logsearch.go) on the data stores fixture of
// cache_test.go.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

func (f *dataFixture) domain(t *testing.T) (string, map[string]any) {
	t.Helper()
	return f.one(t, "AWS::OpenSearchService::Domain")
}

func TestLogSearch_InTheVPCAcrossTwoAZs(t *testing.T) {
	f := dataStores(t)
	_, d := f.domain(t)
	p := props(d)
	var subnets []string
	for _, s := range asList(p["VPCOptions"].(map[string]any)["SubnetIds"]) {
		subnets = append(subnets, fmt.Sprint(s.(map[string]any)["Ref"]))
	}
	sort.Strings(subnets)
	want := append([]string(nil), f.isolated...)
	sort.Strings(want)
	if !reflect.DeepEqual(subnets, want) {
		t.Errorf("domain subnets %v; want one isolated subnet in each AZ %v", subnets, want)
	}
	check(t, "zone awareness over 2 AZs, 2 data nodes", func() {
		f.template().HasResourceProperties(str("AWS::OpenSearchService::Domain"), obj(map[string]any{
			"ClusterConfig": obj(map[string]any{
				"ZoneAwarenessEnabled": true,
				"ZoneAwarenessConfig":  map[string]any{"AvailabilityZoneCount": 2},
				"InstanceCount":        2,
				"InstanceType":         "m7g.large.search",
			}),
		}))
	})
	if !strings.HasPrefix(fmt.Sprint(p["EngineVersion"]), "OpenSearch_2.") {
		t.Errorf("EngineVersion %v; want OpenSearch 2.x", p["EngineVersion"])
	}
}

func TestLogSearch_EncryptedAtRestBetweenNodesAndHTTPSOnly(t *testing.T) {
	f := dataStores(t)
	_, d := f.domain(t)
	p := props(d)
	check(t, "node-to-node, HTTPS only with TLS 1.2+", func() {
		f.template().HasResourceProperties(str("AWS::OpenSearchService::Domain"), obj(map[string]any{
			"NodeToNodeEncryptionOptions": map[string]any{"Enabled": true},
			"DomainEndpointOptions":       obj(map[string]any{"EnforceHTTPS": true}),
		}))
	})
	if tls := fmt.Sprint(p["DomainEndpointOptions"].(map[string]any)["TLSSecurityPolicy"]); !strings.HasPrefix(tls, "Policy-Min-TLS-1-2") {
		t.Errorf("TLSSecurityPolicy %s; want TLS 1.2 or later", tls)
	}
	enc, _ := p["EncryptionAtRestOptions"].(map[string]any)
	keyRef, _ := enc["KmsKeyId"].(map[string]any)
	key := f.resources("AWS::KMS::Key")[fmt.Sprint(keyRef["Ref"])]
	if enc["Enabled"] != true || key == nil || key["DeletionPolicy"] != "Retain" || props(key)["EnableKeyRotation"] != true {
		t.Errorf("EncryptionAtRestOptions %v (key %v); want enabled with a rotated, retained customer key of this stack", enc, key)
	}
}

// Fine-grained access control's master is an IAM role, the lifecycle
// function's: no user name and no password exist anywhere.
func TestLogSearch_FineGrainedAccessControlWithAnIAMMasterRole(t *testing.T) {
	f := dataStores(t)
	_, d := f.domain(t)
	adv, _ := props(d)["AdvancedSecurityOptions"].(map[string]any)
	master := f.id(f.logs.MasterRole.Node().DefaultChild())
	want := map[string]any{
		"Enabled":                     true,
		"InternalUserDatabaseEnabled": false,
		"MasterUserOptions":           map[string]any{"MasterUserARN": lambdaGetAtt(master, "Arn")},
	}
	if !jsonEqual(adv, want) {
		t.Errorf("AdvancedSecurityOptions %v; want %v", adv, want)
	}
	fn := f.resources("AWS::Lambda::Function")[f.id(f.logs.Function.Node().DefaultChild())]
	if !jsonEqual(props(fn)["Role"], lambdaGetAtt(master, "Arn")) {
		t.Errorf("the master role %s is not the lifecycle function's (%v)", master, props(fn)["Role"])
	}
	raw, _ := json.Marshal(f.tpl)
	if strings.Contains(string(raw), "MasterUserPassword") || strings.Contains(string(raw), "MasterUserName") {
		t.Error("the template has an internal master user")
	}
}

// The access policy names roles, never "*": the function (GET/PUT/POST),
// the Fluent Bit stand-in given to GrantWrite (POST/PUT) and the admin.
func TestLogSearch_AccessPolicyAllowsOnlyNamedRoles(t *testing.T) {
	f := dataStores(t)
	_, d := f.domain(t)
	doc, _ := props(d)["AccessPolicies"].(map[string]any)
	got := map[string][]string{}
	for _, s := range asList(doc["Statement"]) {
		st := s.(map[string]any)
		principal, _ := st["Principal"].(map[string]any)
		who := flatten(principal["AWS"])
		if st["Effect"] != "Allow" || len(principal) != 1 || strings.Contains(who, "*") {
			t.Errorf("statement %v: want Allow for one IAM role", st)
		}
		if res := flatten(st["Resource"]); !strings.HasSuffix(res, ":domain/"+fmt.Sprint(props(d)["DomainName"])+"/*") {
			t.Errorf("statement %v: resource %s is not this domain", st["Sid"], res)
		}
		for _, a := range asList(st["Action"]) {
			got[who] = append(got[who], a.(string))
		}
	}
	role := func(id string) string { return flatten(lambdaGetAtt(id, "Arn")) }
	want := map[string][]string{
		role(f.id(f.logs.MasterRole.Node().DefaultChild())): {"es:ESHttpGet", "es:ESHttpPost", "es:ESHttpPut"},
		role(f.fluent): {"es:ESHttpPost", "es:ESHttpPut"},
		dataAdminRole:  {"es:ESHttpDelete", "es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPatch", "es:ESHttpPost", "es:ESHttpPut"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("access policy grants %v; want %v", got, want)
	}
}

// Retention is the lifecycle custom resource's: the configured days, the
// index prefix, Fluent Bit's role as writer, the admin as all_access.
func TestLogSearch_RetentionPolicyAppliedByTheCustomResource(t *testing.T) {
	f := dataStores(t)
	id, res := f.one(t, "Custom::LadderLogLifecycle")
	p := props(res)
	domainID, _ := f.domain(t)
	master := f.id(f.logs.MasterRole.Node().DefaultChild())
	want := map[string]any{
		"Endpoint":       lambdaGetAtt(domainID, "DomainEndpoint"),
		"PolicyName":     "ladder-logs-retention",
		"IndexPrefix":    "ladder-logs",
		"RetentionDays":  fmt.Sprint(dataRetentionDays),
		"IndexReplicas":  "1",
		"MasterRoleArn":  lambdaGetAtt(master, "Arn"),
		"WriterRoleArns": []any{lambdaGetAtt(f.fluent, "Arn")},
		"AdminRoleArns":  []any{dataAdminRole},
	}
	for k, v := range want {
		if !jsonEqual(p[k], v) {
			t.Errorf("%s.%s = %v; want %v", id, k, p[k], v)
		}
	}
	if f.logs.IndexPrefix != "ladder-logs" {
		t.Errorf("IndexPrefix %q", f.logs.IndexPrefix)
	}
	// Its provider invokes the Go handler built from lambda-src/opensearch-ism.
	fnID := f.id(f.logs.Function.Node().DefaultChild())
	invoked := false
	for _, st := range f.statementsOfAllPolicies() {
		if st["Action"] == "lambda:InvokeFunction" && strings.Contains(flatten(st["Resource"]), fnID) {
			invoked = true
		}
	}
	if !invoked {
		t.Errorf("no policy lets the provider invoke %s", fnID)
	}
	deps := map[string]bool{}
	for _, d := range asList(res["DependsOn"]) {
		deps[fmt.Sprint(d)] = true
	}
	if !deps[domainID] {
		t.Errorf("%s does not wait for the domain (and its access policy): DependsOn %v", id, res["DependsOn"])
	}
	// Nor for the rules letting the function reach the domain.
	domainSG := f.id(f.logs.SecurityGroup.Node().DefaultChild())
	for typ, side := range map[string]string{"AWS::EC2::SecurityGroupIngress": "GroupId", "AWS::EC2::SecurityGroupEgress": "DestinationSecurityGroupId"} {
		for rid, r := range f.resources(typ) {
			rp := props(r)
			other := "SourceSecurityGroupId"
			if side != "GroupId" {
				other = "GroupId"
			}
			fromFn := strings.Contains(flatten(rp[other]), "LifecycleSecurityGroup")
			if jsonEqual(rp[side], lambdaGetAtt(domainSG, "GroupId")) && fromFn && !deps[rid] {
				t.Errorf("%s does not wait for the function's rule %s", id, rid)
			}
		}
	}
}

func (f *dataFixture) statementsOfAllPolicies() []map[string]any {
	var out []map[string]any
	for _, r := range f.resources("AWS::IAM::Policy") {
		doc, _ := props(r)["PolicyDocument"].(map[string]any)
		for _, s := range asList(doc["Statement"]) {
			out = append(out, s.(map[string]any))
		}
	}
	return out
}

func TestLogSearch_LifecycleFunctionRunsInTheVPCAndReachesOnlyTheDomain(t *testing.T) {
	f := dataStores(t)
	fn := f.resources("AWS::Lambda::Function")[f.id(f.logs.Function.Node().DefaultChild())]
	vpc, _ := props(fn)["VpcConfig"].(map[string]any)
	sgs := asList(vpc["SecurityGroupIds"])
	if len(sgs) != 1 || len(asList(vpc["SubnetIds"])) != 2 {
		t.Fatalf("VpcConfig %v; want one security group and the domain's two subnets", vpc)
	}
	fnSG := fmt.Sprint(sgs[0].(map[string]any)["Fn::GetAtt"].([]any)[0])
	domainSG := f.id(f.logs.SecurityGroup.Node().DefaultChild())
	var egress []string
	for _, r := range f.resources("AWS::EC2::SecurityGroupEgress") {
		p := props(r)
		if jsonEqual(p["GroupId"], lambdaGetAtt(fnSG, "GroupId")) {
			egress = append(egress, fmt.Sprintf("%s:%v", flatten(p["DestinationSecurityGroupId"]), p["FromPort"]))
		}
	}
	if want := []string{flatten(lambdaGetAtt(domainSG, "GroupId")) + ":443"}; !reflect.DeepEqual(egress, want) {
		t.Errorf("function egress %v; want only %v", egress, want)
	}
	for _, e := range asList(props(f.resources("AWS::EC2::SecurityGroup")[fnSG])["SecurityGroupEgress"]) {
		if cidr := e.(map[string]any)["CidrIp"]; cidr == "0.0.0.0/0" {
			t.Errorf("function security group allows all egress: %v", e)
		}
	}
}

func TestLogSearch_HTTPSOnlyFromPeersAndTheFunction(t *testing.T) {
	f := dataStores(t)
	_, d := f.domain(t)
	sgs := asList(props(d)["VPCOptions"].(map[string]any)["SecurityGroupIds"])
	domainSG := f.id(f.logs.SecurityGroup.Node().DefaultChild())
	if len(sgs) != 1 || !jsonEqual(sgs[0], lambdaGetAtt(domainSG, "GroupId")) {
		t.Fatalf("domain security groups %v; want the construct's own alone", sgs)
	}
	fnSG := fmt.Sprint(asList(props(f.resources("AWS::Lambda::Function")[f.id(f.logs.Function.Node().DefaultChild())])["VpcConfig"].(map[string]any)["SecurityGroupIds"])[0].(map[string]any)["Fn::GetAtt"].([]any)[0])
	want := []string{fnSG + ":443-443", f.nodesSG + ":443-443"}
	sort.Strings(want)
	if got := f.ingressTo(t, domainSG); !reflect.DeepEqual(got, want) {
		t.Errorf("domain ingress %v; want only %v", got, want)
	}
}

func TestLogSearch_SlowAndApplicationLogsToRetainedLogGroups(t *testing.T) {
	f := dataStores(t)
	_, d := f.domain(t)
	opts, _ := props(d)["LogPublishingOptions"].(map[string]any)
	var groups []string
	for _, typ := range []string{"SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS", "ES_APPLICATION_LOGS"} {
		o, _ := opts[typ].(map[string]any)
		arn, _ := o["CloudWatchLogsLogGroupArn"].(map[string]any)
		att, _ := arn["Fn::GetAtt"].([]any)
		if o["Enabled"] != true || len(att) != 2 {
			t.Errorf("%s: %v; want enabled, to a log group of this stack", typ, o)
			continue
		}
		g := f.resources("AWS::Logs::LogGroup")[fmt.Sprint(att[0])]
		if g == nil || g["DeletionPolicy"] != "Retain" || props(g)["RetentionInDays"] != 30.0 {
			t.Errorf("%s: log group %v; want retained, 30 days", typ, g)
		}
		groups = append(groups, fmt.Sprint(att[0]))
	}
	// The service may write to exactly those groups.
	_, pol := f.one(t, "AWS::Logs::ResourcePolicy")
	text := flatten(props(pol)["PolicyDocument"])
	for _, g := range groups {
		if !strings.Contains(text, `"`+g+`"`) {
			t.Errorf("the logs resource policy does not cover %s: %s", g, text)
		}
	}
	if !strings.Contains(text, `es.amazonaws.com`) || !strings.Contains(text, "aws:SourceAccount") {
		t.Errorf("logs resource policy %s; want es.amazonaws.com limited to this account", text)
	}
}

func TestLogSearch_DomainIsRetained(t *testing.T) {
	f := dataStores(t)
	_, d := f.domain(t)
	if d["DeletionPolicy"] != "Retain" || d["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("DeletionPolicy %v, UpdateReplacePolicy %v; want Retain", d["DeletionPolicy"], d["UpdateReplacePolicy"])
	}
	if up, _ := d["UpdatePolicy"].(map[string]any); up["EnableVersionUpgrade"] != true {
		t.Errorf("UpdatePolicy %v; want version upgrades in place", d["UpdatePolicy"])
	}
}

// The fixture synthesizes under AwsSolutionsChecks, so any unsuppressed
// finding already fails it; this pins which findings the two constructs
// accept, each with its reason next to the resource.
func TestDataStores_NagSuppressionsAreTheReviewedOnes(t *testing.T) {
	f := dataStores(t)
	got := map[string][]string{}
	res, _ := f.tpl["Resources"].(map[string]any)
	for _, r := range res {
		rm := r.(map[string]any)
		md, _ := rm["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		for _, s := range asList(nag["rules_to_suppress"]) {
			sm := s.(map[string]any)
			if strings.TrimSpace(fmt.Sprint(sm["reason"])) == "" {
				t.Errorf("%v suppressed without a reason", sm["id"])
			}
			got[fmt.Sprint(rm["Type"])] = append(got[fmt.Sprint(rm["Type"])], fmt.Sprint(sm["id"]))
		}
	}
	for k, ids := range got {
		sort.Strings(ids)
		got[k] = slices.Compact(ids)
	}
	want := map[string][]string{
		"AWS::ElastiCache::ReplicationGroup": {"AwsSolutions-AEC5"},
		"AWS::SecretsManager::Secret":        {"AwsSolutions-SMG4"},
		"AWS::OpenSearchService::Domain":     {"AwsSolutions-OS3", "AwsSolutions-OS4"},
		// The function role's ENI policy (GoFunction) and the provider
		// framework's invoke grant (as db-migrate's); suppressions on a
		// role also sit on its default policy.
		"AWS::IAM::Role":   {"AwsSolutions-IAM4", "AwsSolutions-IAM5"},
		"AWS::IAM::Policy": {"AwsSolutions-IAM4", "AwsSolutions-IAM5"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("suppressed findings by resource type %v; want %v", got, want)
	}
}
