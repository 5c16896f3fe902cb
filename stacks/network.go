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
}

// Network is a VPC with flow logs to CloudWatch Logs.
type Network struct {
	constructs.Construct
	Vpc awsec2.Vpc
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
		IpAddresses:         awsec2.IpAddresses_Cidr(s("10.0.0.0/16")),
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
	return &Network{Construct: c, Vpc: vpc}
}
