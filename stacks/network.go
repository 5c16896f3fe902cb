package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
)

// NetworkProps sizes a rung's VPC. Each rung adds tiers of subnets as it
// needs them; all rungs log their traffic.
type NetworkProps struct {
	// MaxAzs is how many availability zones the VPC spans.
	MaxAzs int
	// NatGateways is the number of NAT gateways (0 when there are no
	// private subnets). One per AZ is resilient; one in total is cheaper.
	NatGateways int
	// PrivateSubnets adds subnets with egress through NAT for compute.
	PrivateSubnets bool
	// IsolatedSubnets adds subnets with no route out, for databases.
	IsolatedSubnets bool
	// FlowLogRetention is how long VPC flow logs are kept.
	FlowLogRetention awslogs.RetentionDays
	// ServiceEndpoints adds VPC endpoints for what the private subnets'
	// instances and functions call most: an S3 gateway endpoint (image
	// layers, packages) and interface endpoints for ECR, CloudWatch Logs,
	// Secrets Manager and Session Manager, so that traffic stays off the NAT
	// gateways (and their per-GB charge) and keeps working if one fails.
	// Needs PrivateSubnets: the interface endpoints live there.
	ServiceEndpoints bool
}

// Network is a VPC with flow logs to CloudWatch Logs.
type Network struct {
	constructs.Construct
	Vpc awsec2.Vpc
	// Endpoints are the interface endpoints by service name ("secretsmanager",
	// "ecr.api", ...), when ServiceEndpoints is set.
	Endpoints map[string]awsec2.InterfaceVpcEndpoint
}

// vpcCidr is every rung's address range (rungs never peer, so they may
// share it).
const vpcCidr = "10.0.0.0/16"

// interfaceEndpoints are the services the ladder's hosts call through the
// VPC: image pulls (ecr.api, ecr.dkr), container and agent logs (logs),
// database credentials (secretsmanager) and Session Manager (ssm,
// ssmmessages, ec2messages). Order fixes the construct ids.
var interfaceEndpoints = []struct {
	id      string
	service func() awsec2.InterfaceVpcEndpointAwsService
}{
	{"EcrApi", awsec2.InterfaceVpcEndpointAwsService_ECR},
	{"EcrDocker", awsec2.InterfaceVpcEndpointAwsService_ECR_DOCKER},
	{"Logs", awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_LOGS},
	{"SecretsManager", awsec2.InterfaceVpcEndpointAwsService_SECRETS_MANAGER},
	{"Ssm", awsec2.InterfaceVpcEndpointAwsService_SSM},
	{"SsmMessages", awsec2.InterfaceVpcEndpointAwsService_SSM_MESSAGES},
	{"Ec2Messages", awsec2.InterfaceVpcEndpointAwsService_EC2_MESSAGES},
}

func NewNetwork(scope constructs.Construct, id string, props NetworkProps) *Network {
	c := constructs.NewConstruct(scope, s(id))

	subnets := []*awsec2.SubnetConfiguration{
		{Name: s("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: n(24)},
	}
	if props.PrivateSubnets {
		subnets = append(subnets, &awsec2.SubnetConfiguration{Name: s("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: n(20)})
	}
	if props.IsolatedSubnets {
		subnets = append(subnets, &awsec2.SubnetConfiguration{Name: s("isolated"), SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED, CidrMask: n(24)})
	}

	flowLogs := awslogs.NewLogGroup(c, s("FlowLogs"), &awslogs.LogGroupProps{
		Retention:     props.FlowLogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	vpc := awsec2.NewVpc(c, s("Vpc"), &awsec2.VpcProps{
		IpAddresses:         awsec2.IpAddresses_Cidr(s(vpcCidr)),
		MaxAzs:              n(float64(props.MaxAzs)),
		NatGateways:         n(float64(props.NatGateways)),
		SubnetConfiguration: &subnets,
		FlowLogs: &map[string]*awsec2.FlowLogOptions{
			"All": {
				Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, nil),
				TrafficType: awsec2.FlowLogTrafficType_ALL,
			},
		},
	})
	nw := &Network{Construct: c, Vpc: vpc, Endpoints: map[string]awsec2.InterfaceVpcEndpoint{}}
	if props.ServiceEndpoints {
		if !props.PrivateSubnets {
			panic("NetworkProps.ServiceEndpoints needs PrivateSubnets: the interface endpoints live there")
		}
		// A gateway endpoint is free: every S3 request from the VPC (ECR
		// image layers, Amazon Linux packages) skips the NAT gateway.
		vpc.AddGatewayEndpoint(s("S3"), &awsec2.GatewayVpcEndpointOptions{
			Service: awsec2.GatewayVpcEndpointAwsService_S3(),
		})
		for _, e := range interfaceEndpoints {
			svc := e.service()
			ep := vpc.AddInterfaceEndpoint(s(e.id), &awsec2.InterfaceVpcEndpointOptions{
				Service:           svc,
				Subnets:           &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
				PrivateDnsEnabled: b(true),
				Open:              b(false),
			})
			// HTTPS from inside the VPC only, by its literal range (which
			// cdk-nag can check, unlike the VPC's CidrBlock attribute).
			ep.Connections().AllowDefaultPortFrom(awsec2.Peer_Ipv4(s(vpcCidr)), s("HTTPS from the VPC"))
			nw.Endpoints[*svc.ShortName()] = ep
		}
	}
	return nw
}
