package test

// The Go Lambda functions (stacks/golambda.go), the schema migration custom
// resource (stacks/dbmigrate.go) and the canary (stacks/canary.go), checked
// on a small stack that uses each construct the way a rung does, synthesized
// once with bundling skipped (like TestMain), plus one real build.

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ladder-cdk/ladder/services/schema"
	"github.com/ladder-cdk/ladder/stacks"
)

// lambdaStack is the synthesized test stack and the logical ids of the
// resources the constructs were given.
type lambdaStack struct {
	stack    awscdk.Stack
	tpl      map[string]any
	outdir   string
	vpcID    string // the VPC's logical id
	dbSG     string // the database's security group
	secret   string
	topic    string
	err      error
	migrate  *stacks.DBMigrate
	canary   *stacks.Canary
	resolved func(any) string // logical id of a construct's L1
}

// buildLambdaStack makes a stack with a VPC, a "database" (its security
// group), its secret, an alarm topic, DBMigrate and Canary.
func buildLambdaStack(root string, bundle bool) (ls *lambdaStack) {
	ls = &lambdaStack{}
	ctx := map[string]any{}
	for k, v := range cdkJSONContext() {
		ctx[k] = v
	}
	if !bundle {
		ctx["aws:cdk:bundling-stacks"] = []any{}
	}
	outdir, err := os.MkdirTemp("", "ladder-lambda-test-")
	if err != nil {
		ls.err = err
		return ls
	}
	outdirs = append(outdirs, outdir)
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(outdir)})
	defer func() {
		if r := recover(); r != nil {
			ls.err = fmt.Errorf("synth failed: %v\n%s", r, errorAnnotations(outdir))
		}
	}()
	st := awscdk.NewStack(app, jsii.String("LambdaTest"), &awscdk.StackProps{Env: &awscdk.Environment{Region: jsii.String("us-west-2")}})
	net := stacks.NewNetwork(st, "Network", stacks.NetworkProps{MaxAzs: 2, NatGateways: 1, PrivateSubnets: true, IsolatedSubnets: true, FlowLogRetention: awslogs.RetentionDays_ONE_MONTH})
	dbSG := awsec2.NewSecurityGroup(st, jsii.String("DatabaseSG"), &awsec2.SecurityGroupProps{Vpc: net.Vpc, AllowAllOutbound: jsii.Bool(false)})
	secret := awssecretsmanager.NewSecret(st, jsii.String("DatabaseSecret"), &awssecretsmanager.SecretProps{
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			SecretStringTemplate: jsii.String(`{"username":"ladder","host":"db.internal","port":5432,"dbname":"ladder"}`),
			GenerateStringKey:    jsii.String("password"),
			ExcludePunctuation:   jsii.Bool(true),
		},
	})
	cdknag.NagSuppressions_AddResourceSuppressions(secret, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-SMG4"), Reason: jsii.String("test stack: a stand-in for the rung's database secret"),
	}}, jsii.Bool(true))
	topic := stacks.NewAlarmTopic(st, "Alarms", stacks.AlarmTopicProps{})
	ls.migrate = stacks.NewDBMigrate(st, "Migrate", stacks.DBMigrateProps{
		RepoRoot: root, Vpc: net.Vpc, Secret: secret, Database: dbSG, Port: 5432,
		DatabaseName: "ladder", LogRetention: awslogs.RetentionDays_ONE_MONTH,
	})
	ls.canary = stacks.NewCanary(st, "Canary", stacks.CanaryProps{
		RepoRoot:  root,
		VoteURL:   awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://"), topic.Topic.TopicName(), jsii.String(".example.com/")}),
		ResultURL: jsii.String("https://vote.example.com/result"),
		Namespace: "Ladder/Test", AlarmAction: topic.Action, LogRetention: awslogs.RetentionDays_ONE_MONTH,
	})
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	asm := app.Synth(nil)
	ls.stack, ls.outdir = st, outdir
	ls.tpl, _ = asm.GetStackByName(st.StackName()).Template().(map[string]any)
	id := func(c any) string {
		return fmt.Sprint(st.Resolve(st.GetLogicalId(c.(awscdk.CfnElement))))
	}
	ls.resolved = id
	ls.vpcID = id(net.Vpc.Node().DefaultChild())
	ls.dbSG = id(dbSG.Node().DefaultChild())
	ls.secret = id(secret.Node().DefaultChild())
	ls.topic = id(topic.Topic.Node().DefaultChild())
	return ls
}

var (
	lambdaOnce   sync.Once
	lambdaShared *lambdaStack
)

func lambdaTest(t *testing.T) *lambdaStack {
	t.Helper()
	lambdaOnce.Do(func() { lambdaShared = buildLambdaStack(repoRoot(), false) })
	if lambdaShared.err != nil {
		t.Fatal(lambdaShared.err)
	}
	return lambdaShared
}

func (ls *lambdaStack) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	res, _ := ls.tpl["Resources"].(map[string]any)
	for id, r := range res {
		if m := r.(map[string]any); m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

func (ls *lambdaStack) template() assertions.Template {
	return assertions.Template_FromJSON(&ls.tpl, nil)
}

func lambdaRef(id string) map[string]any { return map[string]any{"Ref": id} }
func lambdaGetAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// goFunctions are the Lambda functions built from lambda-src, by logical id.
func (ls *lambdaStack) goFunctions(t *testing.T) (migrate, canary string) {
	t.Helper()
	migrate = ls.resolved(ls.migrate.Function.Node().DefaultChild())
	canary = ls.resolved(ls.canary.Function.Node().DefaultChild())
	return migrate, canary
}

func TestGoFunctionsRunOnGravitonWithTheOSOnlyRuntime(t *testing.T) {
	ls := lambdaTest(t)
	m, c := ls.goFunctions(t)
	fns := ls.resources("AWS::Lambda::Function")
	for _, id := range []string{m, c} {
		p := props(fns[id])
		if p["Runtime"] != "provided.al2023" || !jsonEqual(p["Architectures"], []any{"arm64"}) || p["Handler"] != "bootstrap" {
			t.Errorf("%s: runtime %v, architectures %v, handler %v; want provided.al2023, [arm64], bootstrap", id, p["Runtime"], p["Architectures"], p["Handler"])
		}
		// Its own log group, retained, with the rung's retention.
		lg, _ := p["LoggingConfig"].(map[string]any)
		lgRef, _ := lg["LogGroup"].(map[string]any)
		group, ok := ls.resources("AWS::Logs::LogGroup")[fmt.Sprint(lgRef["Ref"])]
		if !ok || props(group)["RetentionInDays"] != 30.0 || group["DeletionPolicy"] != "Retain" {
			t.Errorf("%s: log group %v = %v; want its own, 30 days, retained", id, lg, group)
		}
	}
	// Every other function is the provider framework's (Node.js, by CDK).
	for id, f := range fns {
		if id != m && id != c && !strings.HasPrefix(fmt.Sprint(props(f)["Runtime"]), "nodejs") {
			t.Errorf("unexpected function %s: %v", id, props(f)["Runtime"])
		}
	}
}

func TestDBMigrateRunsInThePrivateSubnets(t *testing.T) {
	ls := lambdaTest(t)
	m, _ := ls.goFunctions(t)
	var private []any
	for id, sn := range ls.resources("AWS::EC2::Subnet") {
		for _, tag := range asList(props(sn)["Tags"]) {
			tg := tag.(map[string]any)
			if tg["Key"] == "aws-cdk:subnet-type" && tg["Value"] == "Private" {
				private = append(private, lambdaRef(id))
			}
		}
	}
	sort.Slice(private, func(i, j int) bool { return fmt.Sprint(private[i]) < fmt.Sprint(private[j]) })
	vpc, _ := props(ls.resources("AWS::Lambda::Function")[m])["VpcConfig"].(map[string]any)
	got := asList(vpc["SubnetIds"])
	sort.Slice(got, func(i, j int) bool { return fmt.Sprint(got[i]) < fmt.Sprint(got[j]) })
	if len(private) != 2 || !jsonEqual(got, private) {
		t.Errorf("db-migrate subnets %v, want the private (egress) subnets %v", got, private)
	}
	sgID := ls.resolved(ls.migrate.SecurityGroup.Node().DefaultChild())
	if !jsonEqual(vpc["SecurityGroupIds"], []any{lambdaGetAtt(sgID, "GroupId")}) {
		t.Errorf("db-migrate security groups %v, want only its own %s", vpc["SecurityGroupIds"], sgID)
	}
	_, c := ls.goFunctions(t)
	if props(ls.resources("AWS::Lambda::Function")[c])["VpcConfig"] != nil {
		t.Errorf("the canary is in a VPC; it checks the public endpoint from outside")
	}
}

// The database admits the migration function on its port and nothing else;
// the function may reach only the database and HTTPS (Secrets Manager).
func TestOnlyDBMigrateReachesTheDatabase(t *testing.T) {
	ls := lambdaTest(t)
	sgID := ls.resolved(ls.migrate.SecurityGroup.Node().DefaultChild())
	var ingress []map[string]any
	for _, r := range ls.resources("AWS::EC2::SecurityGroupIngress") {
		if jsonEqual(props(r)["GroupId"], lambdaGetAtt(ls.dbSG, "GroupId")) {
			ingress = append(ingress, props(r))
		}
	}
	ingress = append(ingress, mapsOf(props(ls.resources("AWS::EC2::SecurityGroup")[ls.dbSG])["SecurityGroupIngress"])...)
	if len(ingress) != 1 {
		t.Fatalf("database ingress rules %v, want exactly one", ingress)
	}
	in := ingress[0]
	if in["IpProtocol"] != "tcp" || in["FromPort"] != 5432.0 || in["ToPort"] != 5432.0 || !jsonEqual(in["SourceSecurityGroupId"], lambdaGetAtt(sgID, "GroupId")) {
		t.Errorf("database ingress %v, want tcp 5432 from db-migrate's group only", in)
	}

	egress := mapsOf(props(ls.resources("AWS::EC2::SecurityGroup")[sgID])["SecurityGroupEgress"])
	for _, r := range ls.resources("AWS::EC2::SecurityGroupEgress") {
		if jsonEqual(props(r)["GroupId"], lambdaGetAtt(sgID, "GroupId")) {
			egress = append(egress, props(r))
		}
	}
	var rules []string
	for _, e := range egress {
		to := fmt.Sprint(e["CidrIp"])
		if e["DestinationSecurityGroupId"] != nil {
			if !jsonEqual(e["DestinationSecurityGroupId"], lambdaGetAtt(ls.dbSG, "GroupId")) {
				t.Errorf("egress to an unexpected group %v", e["DestinationSecurityGroupId"])
			}
			to = "database"
		}
		rules = append(rules, fmt.Sprintf("%v:%v-%v->%s", e["IpProtocol"], e["FromPort"], e["ToPort"], to))
	}
	sort.Strings(rules)
	if want := []string{"tcp:443-443->0.0.0.0/0", "tcp:5432-5432->database"}; !reflect.DeepEqual(rules, want) {
		t.Errorf("db-migrate egress %v, want %v", rules, want)
	}
}

func mapsOf(v any) []map[string]any {
	var out []map[string]any
	for _, x := range asList(v) {
		out = append(out, x.(map[string]any))
	}
	return out
}

// rolePolicies maps each role's logical id to the statements attached to it.
func (ls *lambdaStack) rolePolicies() map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, p := range ls.resources("AWS::IAM::Policy") {
		doc, _ := props(p)["PolicyDocument"].(map[string]any)
		for _, r := range asList(props(p)["Roles"]) {
			role := fmt.Sprint(r.(map[string]any)["Ref"])
			for _, st := range asList(doc["Statement"]) {
				out[role] = append(out[role], st.(map[string]any))
			}
		}
	}
	return out
}

// Only db-migrate reads the database secret, and only that secret; the
// Go functions' roles carry no AWS managed policy but the ENI one a VPC
// function needs, and may write only to their own log group.
func TestLambdaRolesAreLeastPrivilege(t *testing.T) {
	ls := lambdaTest(t)
	m, c := ls.goFunctions(t)
	fns := ls.resources("AWS::Lambda::Function")
	roleOf := func(fn string) string {
		return fmt.Sprint(props(fns[fn])["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0])
	}
	migrateRole, canaryRole := roleOf(m), roleOf(c)
	policies := ls.rolePolicies()
	for role, sts := range policies {
		for _, st := range sts {
			for _, a := range asList(st["Action"]) {
				action := a.(string)
				if strings.HasPrefix(action, "secretsmanager:") {
					if role != migrateRole || !jsonEqual(st["Resource"], lambdaRef(ls.secret)) {
						t.Errorf("%s may %s on %v; only db-migrate's role may read the database secret", role, action, st["Resource"])
					}
				}
				if strings.Contains(action, "*") {
					t.Errorf("%s: wildcard action %s", role, action)
				}
			}
			for _, r := range asList(st["Resource"]) {
				if r == "*" {
					t.Errorf("%s: %v on every resource", role, st["Action"])
				}
			}
		}
	}
	readsSecret := false
	for _, st := range policies[migrateRole] {
		if jsonEqual(st["Resource"], lambdaRef(ls.secret)) && strings.Contains(fmt.Sprint(st["Action"]), "secretsmanager:GetSecretValue") {
			readsSecret = true
		}
	}
	if !readsSecret {
		t.Errorf("db-migrate's role cannot read the secret: %v", policies[migrateRole])
	}
	// The canary publishes metrics as log lines: logs on its own group only.
	for _, st := range policies[canaryRole] {
		for _, a := range asList(st["Action"]) {
			if !strings.HasPrefix(a.(string), "logs:") {
				t.Errorf("canary role may %v", a)
			}
		}
	}
	roles := ls.resources("AWS::IAM::Role")
	for role, want := range map[string]string{migrateRole: "AWSLambdaENIManagementAccess", canaryRole: ""} {
		managed := fmt.Sprint(props(roles[role])["ManagedPolicyArns"])
		if want == "" && props(roles[role])["ManagedPolicyArns"] != nil || want != "" && (!strings.Contains(managed, want) || strings.Count(managed, "arn:") != 1) {
			t.Errorf("%s managed policies %s, want %q only", role, managed, want)
		}
	}
}

// A new migration file changes SchemaVersion, so `cdk deploy` updates the
// resource and applies it; the resource waits for the database.
func TestSchemaResourceCarriesTheLatestSchemaVersion(t *testing.T) {
	ls := lambdaTest(t)
	res := ls.resources("Custom::LadderSchema")
	if len(res) != 1 {
		t.Fatalf("want one Custom::LadderSchema, have %d", len(res))
	}
	for id, r := range res {
		p := props(r)
		if p["SchemaVersion"] != strconv.Itoa(schema.Latest()) || schema.Latest() < 3 {
			t.Errorf("SchemaVersion %v, want %d (services/schema)", p["SchemaVersion"], schema.Latest())
		}
		if !jsonEqual(p["SecretArn"], lambdaRef(ls.secret)) || p["DatabaseName"] != "ladder" {
			t.Errorf("properties %v", p)
		}
		if !strings.Contains(fmt.Sprint(r["DependsOn"]), ls.dbSG) {
			t.Errorf("%s depends on %v, not on the database %s", id, r["DependsOn"], ls.dbSG)
		}
		sgID := ls.resolved(ls.migrate.SecurityGroup.Node().DefaultChild())
		for eid, e := range ls.resources("AWS::EC2::SecurityGroupEgress") {
			if jsonEqual(props(e)["GroupId"], lambdaGetAtt(sgID, "GroupId")) && !strings.Contains(fmt.Sprint(r["DependsOn"]), eid) {
				t.Errorf("%s does not wait for db-migrate's egress rule %s", id, eid)
			}
		}
		if p["ServiceTimeout"] == nil {
			t.Errorf("no ServiceTimeout: CloudFormation would wait an hour for a stuck handler")
		}
		if r["DeletionPolicy"] == "Retain" {
			t.Errorf("the resource itself holds no data; Delete is a no-op in the handler")
		}
	}
	// Exposed as an attribute for outputs and dependents.
	if got := fmt.Sprint(ls.stack.Resolve(ls.migrate.SchemaVersion())); !strings.Contains(got, "SchemaVersion") {
		t.Errorf("SchemaVersion() resolves to %s", got)
	}
}

func TestCanaryRunsOnAScheduleAndAlarms(t *testing.T) {
	ls := lambdaTest(t)
	_, c := ls.goFunctions(t)
	tpl := ls.template()
	check(t, "schedule", func() {
		tpl.HasResourceProperties(str("AWS::Events::Rule"), obj(map[string]any{
			"ScheduleExpression": "rate(5 minutes)",
			"State":              "ENABLED",
			"Targets": arr(obj(map[string]any{
				"Arn":         lambdaGetAtt(c, "Arn"),
				"RetryPolicy": obj(map[string]any{"MaximumRetryAttempts": 0}),
			})),
		}))
	})
	check(t, "no Lambda retries", func() {
		tpl.HasResourceProperties(str("AWS::Lambda::EventInvokeConfig"), obj(map[string]any{
			"FunctionName": lambdaRef(c), "MaximumRetryAttempts": 0,
		}))
	})
	check(t, "endpoints and namespace", func() {
		tpl.HasResourceProperties(str("AWS::Lambda::Function"), obj(map[string]any{
			"Environment": obj(map[string]any{"Variables": obj(map[string]any{
				"RESULT_URL":       "https://vote.example.com/result",
				"METRIC_NAMESPACE": "Ladder/Test",
				"VOTE_URL":         obj(map[string]any{"Fn::Join": assertions.Match_AnyValue()}),
			})}),
		}))
	})
	dims := []any{map[string]any{"Name": "Canary", "Value": lambdaRef(c)}}
	check(t, "failure alarm", func() {
		tpl.HasResourceProperties(str("AWS::CloudWatch::Alarm"), obj(map[string]any{
			"Namespace": "Ladder/Test", "MetricName": "Success", "Dimensions": dims,
			"Statistic": "Minimum", "Period": 300,
			"ComparisonOperator": "LessThanThreshold", "Threshold": 1,
			"EvaluationPeriods": 3, "DatapointsToAlarm": 2,
			"TreatMissingData": "breaching",
			"AlarmActions":     []any{lambdaRef(ls.topic)},
			"OKActions":        []any{lambdaRef(ls.topic)},
		}))
	})
	check(t, "latency alarm", func() {
		tpl.HasResourceProperties(str("AWS::CloudWatch::Alarm"), obj(map[string]any{
			"Namespace": "Ladder/Test", "MetricName": "Latency", "Dimensions": dims,
			"Statistic": "Maximum", "ComparisonOperator": "GreaterThanThreshold", "Threshold": 10000,
			"TreatMissingData": "notBreaching", "AlarmActions": []any{lambdaRef(ls.topic)},
		}))
	})
	if *ls.canary.Success.MetricName() != "Success" || *ls.canary.Latency.MetricName() != "Latency" {
		t.Errorf("metrics %s, %s", *ls.canary.Success.MetricName(), *ls.canary.Latency.MetricName())
	}
}

// The test stack uses every construct as a rung would and passes cdk-nag,
// so a rung adding them inherits no unreviewed finding.
func TestLambdaConstructsPassCdkNag(t *testing.T) {
	ls := lambdaTest(t)
	ann := assertions.Annotations_FromStack(ls.stack)
	for _, f := range msgs(ann.FindError(str("*"), assertions.Match_StringLikeRegexp(str("AwsSolutions-.*")))) {
		t.Errorf("cdk-nag error: %v", f)
	}
	for _, f := range msgs(ann.FindWarning(str("*"), assertions.Match_StringLikeRegexp(str("AwsSolutions-.*")))) {
		t.Errorf("cdk-nag warning: %v", f)
	}
}

// lambdaInputs are the files a Lambda build reads from the repository: the
// root module, the handlers, and the services packages they import (the
// schema for db-migrate, the event-stream reader for the canary).
var lambdaInputs = []string{"go.mod", "go.sum", "lambda-src", "services/go.mod", "services/go.sum", "services/schema", "services/sse"}

func copyInputs(t *testing.T, to string) {
	t.Helper()
	for _, in := range lambdaInputs {
		src := filepath.Join(repoRoot(), in)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repoRoot(), p)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(to, rel), 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(to, rel)), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(to, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The one real build: both handlers are compiled on this machine (no
// Docker) into arm64 Linux executables named bootstrap, and the same source
// gives byte-identical templates (asset hashes included) from two copies
// of the repository in different directories.
func TestGoLambdasBuildLocallyAndReproducibly(t *testing.T) {
	var templates []string
	var assetDirs []string
	for i, dir := range []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "deeper", "checkout", "b")} {
		copyInputs(t, dir)
		ls := buildLambdaStack(dir, true)
		if ls.err != nil {
			t.Fatal(ls.err)
		}
		raw, _ := json.MarshalIndent(ls.tpl, "", " ")
		templates = append(templates, string(raw))
		if strings.Contains(string(raw), dir) {
			t.Errorf("copy %d: the template mentions the checkout path %s", i, dir)
		}
		m, c := ls.goFunctions(t)
		for _, fn := range []string{m, c} {
			code := props(ls.resources("AWS::Lambda::Function")[fn])["Code"].(map[string]any)
			key := fmt.Sprint(code["S3Key"])
			hash := strings.TrimSuffix(key, ".zip")
			dir := filepath.Join(ls.outdir, "asset."+hash)
			if i == 0 {
				assetDirs = append(assetDirs, dir)
			}
			checkBootstrap(t, dir)
		}
	}
	if templates[0] != templates[1] {
		t.Errorf("templates differ between two checkouts of the same source:\n%s", firstDiff(templates[0], templates[1]))
	}
	if len(assetDirs) == 2 && assetDirs[0] == assetDirs[1] {
		t.Errorf("db-migrate and canary share an asset %s", assetDirs[0])
	}
}

// checkBootstrap asserts dir holds only an executable static linux/arm64 ELF named bootstrap.
func checkBootstrap(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("asset directory: %v", err)
	}
	if len(entries) != 1 || entries[0].Name() != "bootstrap" {
		t.Errorf("%s holds %v, want only bootstrap", dir, entries)
	}
	p := filepath.Join(dir, "bootstrap")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable (%v)", p, st.Mode())
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", p, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s: machine %v class %v type %v, want an AArch64 64-bit executable", p, f.Machine, f.Class, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked; the runtime wants a static binary (CGO_ENABLED=0)", p)
		}
	}
}

// A handler that does not compile fails synth with the compiler's message;
// it never falls back to Docker.
func TestGoLambdaBuildFailureIsLoud(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.mod":                    "module example.com/broken\n\ngo 1.26.0\n",
		"lambda-src/broken/main.go": "package main\n\nfunc main() { undefinedThing() }\n",
	}
	for name, body := range files {
		_ = os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outdir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
	st := awscdk.NewStack(app, jsii.String("Broken"), nil)
	var msg string
	func() {
		defer func() { msg = fmt.Sprint(recover()) }()
		stacks.NewGoFunction(st, "Broken", stacks.GoFunctionProps{RepoRoot: root, Name: "broken"})
	}()
	for _, want := range []string{"building Lambda handler ./lambda-src/broken", "undefined: undefinedThing"} {
		if !strings.Contains(msg, want) {
			t.Errorf("synth error %q\nwant it to contain %q", msg, want)
		}
	}
	if strings.Contains(strings.ToLower(msg), "docker run") {
		t.Errorf("the failure mentions Docker: %s", msg)
	}
}
