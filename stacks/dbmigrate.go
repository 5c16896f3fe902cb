package stacks

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"

	"github.com/ladder-cdk/ladder/services/schema"
)

// DBMigrateProps point the schema migration at a rung's PostgreSQL.
type DBMigrateProps struct {
	RepoRoot string
	Vpc      awsec2.IVpc
	// VpcSubnets are private subnets with a route to Secrets Manager (an
	// interface endpoint or a NAT gateway); default: PRIVATE_WITH_EGRESS.
	VpcSubnets *awsec2.SubnetSelection
	// Secret is an RDS-style JSON secret: host, port, username, password,
	// dbname. Only the function may read it, and only at run time.
	Secret awssecretsmanager.ISecret
	// Database is the cluster or instance: the function's security group is
	// let in on Port, and the migration waits for it (and its instances).
	Database awsec2.IConnectable
	// Port is the database port; 0 means 5432.
	Port float64
	// DatabaseName overrides dbname in the secret when set.
	DatabaseName string
	LogRetention awslogs.RetentionDays
}

// DBMigrate applies the voting app's schema (services/schema, the same
// migrations the services embed) with a CloudFormation custom resource:
// Create and Update apply the pending migrations, Delete keeps the data.
//
// The resource's SchemaVersion property is the latest migration version,
// read at synth, so adding a migration file changes the template and
// `cdk deploy` runs an Update that applies it. The version actually in the
// database afterwards is the attribute "SchemaVersion" (SchemaVersion()).
//
// The handler reads the credentials from Secrets Manager when it runs (the
// template holds only the secret's ARN) and connects with sslmode=require:
// encrypted, server certificate not verified, because verifying needs the
// RDS CA bundle shipped in the function and this build has no authentic
// source for it; the database accepts only this function's security group
// inside the VPC, which is what stands in for the verification.
type DBMigrate struct {
	constructs.Construct
	Resource      awscdk.CustomResource
	Function      awslambda.Function
	SecurityGroup awsec2.SecurityGroup
}

// SchemaVersion is the database's schema version after the deploy.
func (d *DBMigrate) SchemaVersion() *string { return d.Resource.GetAttString(s("SchemaVersion")) }

func NewDBMigrate(scope constructs.Construct, id string, props DBMigrateProps) *DBMigrate {
	c := constructs.NewConstruct(scope, s(id))
	port := props.Port
	if port == 0 {
		port = 5432
	}
	subnets := props.VpcSubnets
	if subnets == nil {
		subnets = &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
	}

	// Outbound only where it must go: HTTPS to Secrets Manager (through an
	// endpoint or NAT, whose addresses are not known here) and the database
	// port to the database's security group (added by AllowFrom below).
	sg := awsec2.NewSecurityGroup(c, s("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      s("db-migrate: the schema migration custom resource"),
		AllowAllOutbound: b(false),
	})
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(n(443)), s("Secrets Manager API (endpoint or NAT)"), nil)
	props.Database.Connections().AllowFrom(sg, awsec2.Port_Tcp(n(port)), s("db-migrate applies the schema"))

	fn := NewGoFunction(c, "Handler", GoFunctionProps{
		RepoRoot:    props.RepoRoot,
		Name:        "db-migrate",
		Description: "Applies the voting app's schema migrations (custom resource onEvent)",
		// Bounded: a migration that cannot finish in 5 minutes fails the
		// deploy with Lambda's timeout as the reason instead of hanging.
		Timeout:        awscdk.Duration_Minutes(n(5)),
		MemorySize:     256,
		Vpc:            props.Vpc,
		VpcSubnets:     subnets,
		SecurityGroups: []awsec2.ISecurityGroup{sg},
		LogRetention:   props.LogRetention,
	})
	props.Secret.GrantRead(fn.Function, nil)

	provider := newGoProvider(c, fn.Function, "db-migrate", retentionOr(props.LogRetention))

	properties := map[string]any{
		"SecretArn":     props.Secret.SecretArn(),
		"SchemaVersion": strconv.Itoa(schema.Latest()),
	}
	if props.DatabaseName != "" {
		properties["DatabaseName"] = props.DatabaseName
	}
	res := awscdk.NewCustomResource(c, s("Schema"), &awscdk.CustomResourceProps{
		ServiceToken: provider.ServiceToken(),
		ResourceType: s("Custom::LadderSchema"),
		Properties:   &properties,
		// CloudFormation's default wait for a custom resource is an hour;
		// the handler's own limit is 5 minutes.
		ServiceTimeout: awscdk.Duration_Minutes(n(10)),
	})
	// Wait for the database itself, including a cluster's instances (its
	// children): the endpoint answers only once a writer is up.
	if dep, ok := props.Database.(constructs.IConstruct); ok {
		res.Node().AddDependency(dep)
	}
	// And for the function's own egress rule to the database (a child of
	// its security group), or the first connection attempts would be dropped.
	res.Node().AddDependency(sg)
	return &DBMigrate{Construct: c, Resource: res, Function: fn.Function, SecurityGroup: sg}
}

func retentionOr(r awslogs.RetentionDays) awslogs.RetentionDays {
	if r == "" {
		return awslogs.RetentionDays_ONE_MONTH
	}
	return r
}
