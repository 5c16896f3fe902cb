// Command onebucket is the smallest CDK Go app: one stack, one bucket. Its
// synth time is the floor set by starting jsii and Node, against which
// `make bench-synth` measures the Ladder app.
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("OneBucket"), nil)
	awss3.NewBucket(stack, jsii.String("Bucket"), nil)
	app.Synth(nil)
}
