package test

// Tier 3's data stores, specified on a small stack of their own: a VPC, a
// security group standing in for the EKS nodes, a role standing in for
// Fluent Bit's pod role, the Valkey replication group (stacks/cache.go) and
// the log search domain (stacks/logsearch.go) wired to them as the rung
// does. Synthesized once per test binary, under cdk.json's feature flags
// and cdk-nag's AwsSolutions checks (an unsuppressed finding fails synth).

import (
	"fmt"
	"strings"
	"sync"
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

var (
	dataOnce   sync.Once
	dataShared *dataFixture
	dataErr    error
)

func dataStores(t *testing.T) *dataFixture {
	t.Helper()
	dataOnce.Do(func() { dataShared, dataErr = buildDataStores() })
	if dataErr != nil {
		t.Fatal(dataErr)
	}
	return dataShared
}

func buildDataStores() (f *dataFixture, err error) {
	app := newApp(nil)
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("data stores test app synth failed: %v\n%s", r, errorAnnotations(*app.Outdir()))
		}
	}()
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
	azs := asList(p["PreferredCacheClusterAZs"])
	if len(azs) != 2 || jsonEqual(azs[0], azs[1]) {
		t.Errorf("PreferredCacheClusterAZs %v; want the primary and the replica in different AZs", azs)
	}
	if p["Engine"] != "valkey" || !strings.HasPrefix(fmt.Sprint(p["EngineVersion"]), "8.") {
		t.Errorf("engine %v %v; want valkey 8.x", p["Engine"], p["EngineVersion"])
	}
}
