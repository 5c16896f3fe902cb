package stacks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// LambdaGoToolchain is the Go release every Lambda binary is compiled with.
// It is pinned (GOTOOLCHAIN) because the asset hash is the hash of the
// binary: the same source must give the same bytes on every machine, and
// different Go releases compile differently. A machine whose local Go is
// another release fetches this one through the Go module proxy (checksummed
// by the Go checksum database). Keep it equal to the services' build image
// (services/cmd/*/Dockerfile).
const LambdaGoToolchain = "go1.26.8"

// GoFunctionProps describe one Go Lambda handler in lambda-src/.
type GoFunctionProps struct {
	// RepoRoot is the repository's absolute path; the handler is the main
	// package RepoRoot/lambda-src/<Name>, built in the root module.
	RepoRoot string
	// Name is the directory under lambda-src, e.g. "db-migrate".
	Name        string
	Description string
	Environment map[string]*string
	// Timeout defaults to 30 s.
	Timeout awscdk.Duration
	// MemorySize in MiB defaults to 256.
	MemorySize float64
	// Vpc, VpcSubnets and SecurityGroups place the function in a VPC.
	Vpc            awsec2.IVpc
	VpcSubnets     *awsec2.SubnetSelection
	SecurityGroups []awsec2.ISecurityGroup
	// LogRetention defaults to one month.
	LogRetention awslogs.RetentionDays
}

// GoFunction is a Go handler on the provided.al2023 runtime on arm64
// (Graviton), with its own log group and a role that may write only there.
type GoFunction struct {
	constructs.Construct
	Function awslambda.Function
	LogGroup awslogs.LogGroup
	Role     awsiam.Role
}

func NewGoFunction(scope constructs.Construct, id string, props GoFunctionProps) *GoFunction {
	c := constructs.NewConstruct(scope, s(id))
	retention := props.LogRetention
	if retention == "" {
		retention = awslogs.RetentionDays_ONE_MONTH
	}
	// The log group is made here, not by Lambda on first write, so it has a
	// retention, outlives the stack like every other log of the rung, and
	// the role can be scoped to it.
	logs := awslogs.NewLogGroup(c, s("Logs"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// An explicit role instead of Lambda's default one, whose managed
	// AWSLambdaBasicExecutionRole may write to every log group.
	role := awsiam.NewRole(c, s("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(s("lambda.amazonaws.com"), nil),
		Description: s("Runs the " + props.Name + " Lambda function"),
	})
	logs.GrantWrite(role)
	if props.Vpc != nil {
		// Lambda creates and deletes the function's network interfaces with
		// the function's role. AWSLambdaENIManagementAccess is AWS's minimal
		// policy for exactly that (ec2 network-interface actions and
		// DescribeSubnets, which IAM cannot scope to resources not yet created).
		role.AddManagedPolicy(awsiam.ManagedPolicy_FromAwsManagedPolicyName(s("service-role/AWSLambdaENIManagementAccess")))
		suppress(role, nagReason{
			id:        "AwsSolutions-IAM4",
			reason:    "AWSLambdaENIManagementAccess is AWS's minimal policy letting Lambda manage the VPC function's network interfaces; its EC2 actions cannot be scoped to interfaces that do not exist yet",
			appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaENIManagementAccess"},
		})
	}

	timeout := props.Timeout
	if timeout == nil {
		timeout = awscdk.Duration_Seconds(n(30))
	}
	memory := props.MemorySize
	if memory == 0 {
		memory = 256
	}
	code, build := goCode(props.RepoRoot, props.Name)
	fp := &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      s("bootstrap"),
		Code:         code,
		Description:  s(props.Description),
		Timeout:      timeout,
		MemorySize:   n(memory),
		Role:         role,
		LogGroup:     logs,
		Vpc:          props.Vpc,
		VpcSubnets:   props.VpcSubnets,
	}
	if len(props.Environment) > 0 {
		env := props.Environment
		fp.Environment = &env
	}
	if len(props.SecurityGroups) > 0 {
		sgs := props.SecurityGroups
		fp.SecurityGroups = &sgs
	}
	fn := newFunctionBuilt(c, fp, build)
	return &GoFunction{Construct: c, Function: fn, LogGroup: logs, Role: role}
}

// newFunctionBuilt creates the function, whose code is bundled right here
// (CDK stages an asset when the function binds it). If the Go build failed,
// CDK's own error ("Bundling did not produce any output") is replaced by the
// compiler's.
func newFunctionBuilt(c constructs.Construct, fp *awslambda.FunctionProps, build *goBuild) (fn awslambda.Function) {
	defer func() {
		if r := recover(); r != nil {
			if build.err != nil {
				panic(build.err.Error())
			}
			panic(r)
		}
	}()
	return awslambda.NewFunction(c, s("Function"), fp)
}

// goCode is the Lambda code of lambda-src/<name>: a static linux/arm64
// `bootstrap` built by `go build` on this machine (CDK local bundling), so
// synth needs no Docker. The asset hash is the hash of the built binary
// (AssetHashType OUTPUT): with -trimpath, -buildvcs=false and the pinned
// toolchain the binary, and so the hash, is the same in any checkout path on
// any machine, and it changes exactly when the deployed code would. When a
// test skips bundling (aws:cdk:bundling-stacks=[]) CDK stages nothing and
// uses a placeholder hash, so synthesis still works without a build.
func goCode(repoRoot, name string) (awslambda.Code, *goBuild) {
	build := &goBuild{root: repoRoot, pkg: "./lambda-src/" + name}
	return awslambda.Code_FromAsset(s(filepath.Join(repoRoot, "lambda-src", name)), &awss3assets.AssetOptions{
		AssetHashType: awscdk.AssetHashType_OUTPUT,
		Bundling: &awscdk.BundlingOptions{
			// Required by the API but never used: goBuild always reports
			// success to CDK (see TryBundle), so CDK never runs Docker.
			Image: awscdk.DockerImage_FromRegistry(s("public.ecr.aws/docker/library/golang:" + LambdaGoToolchain[2:])),
			// A pointer: jsii takes the address of the value it is given,
			// and a struct value panics with "reflect.Value.Addr of
			// unaddressable value".
			Local: build,
		},
	}), build
}

// goBuild is CDK local bundling with the Go toolchain.
type goBuild struct {
	root string // the root module, where the build runs
	pkg  string // the main package, relative to root
	err  error  // the build's failure, reported by newFunctionBuilt
}

// TryBundle builds the handler into outputDir/bootstrap. It never returns
// false, which would make CDK fall back to Docker and hide the real error
// behind a Docker one; and it must not panic, because a panic inside a jsii
// callback leaves the jsii kernel waiting for the callback's answer. On a
// failed build it records the error and leaves outputDir empty: CDK then
// throws ("did not produce any output"), and newFunctionBuilt replaces that
// with the compiler's message.
func (g *goBuild) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	cmd := exec.Command("go", "build",
		"-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-ldflags=-s -w",
		"-o", filepath.Join(*outputDir, "bootstrap"), g.pkg)
	cmd.Dir = g.root
	// The environment decides the bytes of the binary, so the variables
	// that matter are set here rather than inherited: a developer's GOFLAGS
	// or GOEXPERIMENT must not change the asset.
	cmd.Env = append(os.Environ(),
		"GOOS=linux", "GOARCH=arm64", "GOARM64=v8.0", "CGO_ENABLED=0",
		"GOFLAGS=-mod=readonly", "GOEXPERIMENT=", "GOTOOLCHAIN="+LambdaGoToolchain,
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		g.err = fmt.Errorf("building Lambda handler %s (in %s): %v\n%s", g.pkg, g.root, err, out)
		_ = os.Remove(filepath.Join(*outputDir, "bootstrap"))
	}
	return b(true)
}

// newGoProvider puts the CDK Provider framework in front of a Go custom
// resource handler. The framework's own function (Node.js, made by CDK)
// invokes the handler and answers CloudFormation; like GoFunction it gets a
// role and a retained log group of its own, and may invoke only that handler.
func newGoProvider(scope constructs.Construct, handler awslambda.IFunction, what string, retention awslogs.RetentionDays) customresources.Provider {
	logs := awslogs.NewLogGroup(scope, s("ProviderLogs"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	role := awsiam.NewRole(scope, s("ProviderRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(s("lambda.amazonaws.com"), nil),
		Description: s("Runs the CDK custom resource provider framework for " + what),
	})
	logs.GrantWrite(role)
	provider := customresources.NewProvider(scope, s("Provider"), &customresources.ProviderProps{
		OnEventHandler:       handler,
		FrameworkOnEventRole: role,
		LogGroup:             logs,
	})
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:     s("AwsSolutions-IAM5"),
		Reason: s("The provider framework may invoke any version of the handler of " + what + " (lambda:InvokeFunction on its ARN and ARN:*); this role belongs to that provider alone and its only other grant is its own log group"),
		// Any "<Function.Arn>:*" on this role: the provider adds exactly one.
		AppliesTo: &[]any{&cdknag.RegexAppliesTo{Regex: s(`/^Resource::<[A-Za-z0-9]+\.Arn>:\*$/`)}},
	}}, b(true))
	return provider
}
