package test

// Tier 3's data stores, specified on a small stack of their own: a VPC, a
// security group standing in for the EKS nodes, a role standing in for
// Fluent Bit's pod role, the Valkey replication group (stacks/cache.go) and
// the log search domain (stacks/logsearch.go) wired to them as the rung
// does. Synthesized once per test binary, under cdk.json's feature flags
// and cdk-nag's AwsSolutions checks (an unsuppressed finding fails synth).

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ladder-cdk/ladder/stacks"
)

const (
	dataStack = "DataStoresTest"
	// dataRetentionDays is the fixture's log retention: the lifecycle
	// policy must carry exactly this.
	dataRetentionDays = 9
	dataAdminRole     = "arn:aws:iam::123456789012:role/log-reader"
)

// dataFixture is the synthesized stack and the logical ids of what the
// constructs were given.
type dataFixture struct {
	tpl      map[string]any
	nodesSG  string // the stand-in for the EKS nodes' security group
	fluent   string // the stand-in for Fluent Bit's role
	isolated []string
	cache    *stacks.RedisCache
	logs     *stacks.LogSearch
	id       func(any) string
}

var dataStores = fixture("data stores", buildDataStores)

func buildDataStores(app awscdk.App) (f *dataFixture, err error) {
	st := awscdk.NewStack(app, jsii.String(dataStack), &awscdk.StackProps{
		StackName: jsii.String(dataStack),
		Env:       &awscdk.Environment{Region: jsii.String("us-west-2")},
	})
	net := stacks.NewNetwork(st, "Network", stacks.NetworkProps{
		MaxAzs: 2, NatGateways: 1, PrivateSubnets: true, IsolatedSubnets: true,
		FlowLogRetention: awslogs.RetentionDays_ONE_MONTH,
	})
	nodes := awsec2.NewSecurityGroup(st, jsii.String("NodesSG"), &awsec2.SecurityGroupProps{Vpc: net.Vpc, AllowAllOutbound: jsii.Bool(false)})
	fluent := awsiam.NewRole(st, jsii.String("FluentBitRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("pods.eks.amazonaws.com"), nil),
	})
	isolated := &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED}
	cache := stacks.NewRedisCache(st, "Cache", stacks.RedisCacheProps{
		Vpc: net.Vpc, Subnets: isolated, Replicas: 1, LogRetention: awslogs.RetentionDays_ONE_MONTH,
	})
	cache.AllowFrom(nodes)
	logs := stacks.NewLogSearch(st, "Logs", stacks.LogSearchProps{
		Vpc: net.Vpc, Subnets: isolated, RetentionDays: dataRetentionDays,
		AdminRoleArns: []string{dataAdminRole},
		RepoRoot:      repoRoot(), LogRetention: awslogs.RetentionDays_ONE_MONTH,
	})
	logs.AllowFrom(nodes)
	logs.GrantWrite(fluent)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	asm := app.Synth(nil)
	tpl, ok := asm.GetStackByName(jsii.String(dataStack)).Template().(map[string]any)
	if !ok {
		return nil, fmt.Errorf("stack %s: template is not a JSON object", dataStack)
	}
	id := func(c any) string { return fmt.Sprint(st.Resolve(st.GetLogicalId(c.(awscdk.CfnElement)))) }
	f = &dataFixture{tpl: tpl, cache: cache, logs: logs, id: id,
		nodesSG: id(nodes.Node().DefaultChild()), fluent: id(fluent.Node().DefaultChild())}
	for _, sn := range *net.Vpc.IsolatedSubnets() {
		f.isolated = append(f.isolated, id(sn.Node().DefaultChild()))
	}
	return f, nil
}

func (f *dataFixture) template() assertions.Template {
	return assertions.Template_FromJSON(&f.tpl, nil)
}

func (f *dataFixture) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	res, _ := f.tpl["Resources"].(map[string]any)
	for id, r := range res {
		if m := r.(map[string]any); m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

// one returns the only resource of a type.
func (f *dataFixture) one(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	rs := f.resources(typ)
	if len(rs) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(rs))
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

func TestCache_MultiAZWithAutomaticFailover(t *testing.T) {
	f := dataStores(t)
	_, rg := f.one(t, "AWS::ElastiCache::ReplicationGroup")
	p := props(rg)
	if p["MultiAZEnabled"] != true || p["AutomaticFailoverEnabled"] != true {
		t.Errorf("MultiAZEnabled %v, AutomaticFailoverEnabled %v; want both true", p["MultiAZEnabled"], p["AutomaticFailoverEnabled"])
	}
	if p["NumCacheClusters"] != 2.0 {
		t.Errorf("NumCacheClusters %v; want a primary and one replica", p["NumCacheClusters"])
	}
	// Set only at creation: pinning AZs would make a change of Replicas
	// replace the group. Multi-AZ spreads the nodes over the subnet
	// group's AZs (TestCache_InTheGivenSubnets: one subnet in each of two).
	if azs, pinned := p["PreferredCacheClusterAZs"]; pinned {
		t.Errorf("PreferredCacheClusterAZs %v is pinned", azs)
	}
	if p["Engine"] != "valkey" || !strings.HasPrefix(fmt.Sprint(p["EngineVersion"]), "8.") {
		t.Errorf("engine %v %v; want valkey 8.x", p["Engine"], p["EngineVersion"])
	}
}

func TestCache_EncryptedInTransitAndAtRestWithItsOwnRetainedKey(t *testing.T) {
	f := dataStores(t)
	check(t, "TLS required, encrypted at rest", func() {
		f.template().HasResourceProperties(str("AWS::ElastiCache::ReplicationGroup"), obj(map[string]any{
			"TransitEncryptionEnabled": true,
			"TransitEncryptionMode":    "required",
			"AtRestEncryptionEnabled":  true,
		}))
	})
	_, rg := f.one(t, "AWS::ElastiCache::ReplicationGroup")
	ref, _ := props(rg)["KmsKeyId"].(map[string]any)
	att, _ := ref["Fn::GetAtt"].([]any)
	if len(att) != 2 {
		t.Fatalf("KmsKeyId %v; want the ARN of a key in this stack", props(rg)["KmsKeyId"])
	}
	key := f.resources("AWS::KMS::Key")[fmt.Sprint(att[0])]
	if key == nil || key["DeletionPolicy"] != "Retain" || props(key)["EnableKeyRotation"] != true {
		t.Errorf("key %v: %v; want a customer key, rotated, retained", att[0], key)
	}
}

func TestCache_AuthTokenIsADynamicReferenceToAGeneratedSecret(t *testing.T) {
	f := dataStores(t)
	_, rg := f.one(t, "AWS::ElastiCache::ReplicationGroup")
	token := flatten(props(rg)["AuthToken"])
	secretID := f.id(f.cache.AuthSecret.Node().DefaultChild())
	if want := `{{resolve:secretsmanager:${{"Ref":"` + secretID + `"}}:SecretString:::}}`; token != want {
		t.Errorf("AuthToken %q; want the dynamic reference %q", token, want)
	}
	secret := f.resources("AWS::SecretsManager::Secret")[secretID]
	sp := props(secret)
	if _, literal := sp["SecretString"]; literal || sp["GenerateSecretString"] == nil {
		t.Errorf("secret %s: %v; want a generated value, none in the template", secretID, sp)
	}
	gen, _ := sp["GenerateSecretString"].(map[string]any)
	if gen["ExcludePunctuation"] != true || gen["PasswordLength"].(float64) < 32 {
		t.Errorf("generated token %v; want 32+ characters without punctuation (ElastiCache forbids some)", gen)
	}
	if gen["SecretStringTemplate"] != nil {
		t.Errorf("the secret is JSON (%v); the services read the token as the whole file", gen["SecretStringTemplate"])
	}
}

func TestCache_SnapshotsDailyAndOnDeletion(t *testing.T) {
	f := dataStores(t)
	_, rg := f.one(t, "AWS::ElastiCache::ReplicationGroup")
	p := props(rg)
	if n, _ := p["SnapshotRetentionLimit"].(float64); n < 1 || p["SnapshotWindow"] == nil {
		t.Errorf("SnapshotRetentionLimit %v, SnapshotWindow %v; want daily snapshots kept at least a day", p["SnapshotRetentionLimit"], p["SnapshotWindow"])
	}
	if rg["DeletionPolicy"] != "Snapshot" || rg["UpdateReplacePolicy"] != "Snapshot" {
		t.Errorf("DeletionPolicy %v, UpdateReplacePolicy %v; want Snapshot for both", rg["DeletionPolicy"], rg["UpdateReplacePolicy"])
	}
}

// ingressTo lists the ingress rules (inline and separate) of a security
// group as "peer:port" strings.
func (f *dataFixture) ingressTo(t *testing.T, sgID string) []string {
	t.Helper()
	var out []string
	sg := f.resources("AWS::EC2::SecurityGroup")[sgID]
	if sg == nil {
		t.Fatalf("no security group %s", sgID)
	}
	for _, r := range asList(props(sg)["SecurityGroupIngress"]) {
		raw, _ := json.Marshal(r)
		out = append(out, "inline:"+string(raw))
	}
	for _, r := range f.resources("AWS::EC2::SecurityGroupIngress") {
		p := props(r)
		if !jsonEqual(p["GroupId"], lambdaGetAtt(sgID, "GroupId")) {
			continue
		}
		peer := "?"
		if src, ok := p["SourceSecurityGroupId"].(map[string]any); ok {
			if att, ok := src["Fn::GetAtt"].([]any); ok {
				peer = fmt.Sprint(att[0])
			}
		} else if p["CidrIp"] != nil {
			peer = fmt.Sprint(p["CidrIp"])
		}
		out = append(out, fmt.Sprintf("%s:%v-%v", peer, p["FromPort"], p["ToPort"]))
	}
	sort.Strings(out)
	return out
}

func TestCache_OnlyThePeerConnectsOn6379(t *testing.T) {
	f := dataStores(t)
	_, rg := f.one(t, "AWS::ElastiCache::ReplicationGroup")
	sgs := asList(props(rg)["SecurityGroupIds"])
	cacheSG := f.id(f.cache.SecurityGroup.Node().DefaultChild())
	if len(sgs) != 1 || !jsonEqual(sgs[0], lambdaGetAtt(cacheSG, "GroupId")) {
		t.Fatalf("SecurityGroupIds %v; want the construct's own group alone", sgs)
	}
	if got, want := f.ingressTo(t, cacheSG), []string{f.nodesSG + ":6379-6379"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ingress %v; want only %v", got, want)
	}
}

func TestCache_InTheGivenSubnets(t *testing.T) {
	f := dataStores(t)
	_, rg := f.one(t, "AWS::ElastiCache::ReplicationGroup")
	ref, _ := props(rg)["CacheSubnetGroupName"].(map[string]any)
	group := f.resources("AWS::ElastiCache::SubnetGroup")[fmt.Sprint(ref["Ref"])]
	var got []string
	for _, s := range asList(props(group)["SubnetIds"]) {
		got = append(got, fmt.Sprint(s.(map[string]any)["Ref"]))
	}
	sort.Strings(got)
	want := append([]string(nil), f.isolated...)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("subnet group %v; want the isolated subnets %v", got, want)
	}
}

func TestCache_SlowAndEngineLogsGoToRetainedLogGroups(t *testing.T) {
	f := dataStores(t)
	_, rg := f.one(t, "AWS::ElastiCache::ReplicationGroup")
	types := map[string]bool{}
	for _, d := range asList(props(rg)["LogDeliveryConfigurations"]) {
		dm := d.(map[string]any)
		types[fmt.Sprint(dm["LogType"])] = true
		ref := dm["DestinationDetails"].(map[string]any)["CloudWatchLogsDetails"].(map[string]any)["LogGroup"].(map[string]any)["Ref"]
		g := f.resources("AWS::Logs::LogGroup")[fmt.Sprint(ref)]
		if dm["DestinationType"] != "cloudwatch-logs" || g == nil || g["DeletionPolicy"] != "Retain" || props(g)["RetentionInDays"] != 30.0 {
			t.Errorf("%v: %v -> %v; want a retained log group of this stack with 30 days' retention", dm["LogType"], dm, g)
		}
	}
	if !types["slow-log"] || !types["engine-log"] {
		t.Errorf("log types %v; want slow-log and engine-log", types)
	}
}
