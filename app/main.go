// Command app is the Ladder CDK app: `cdk synth` runs it (cdk.json "app")
// to synthesize every selected rung into cdk.out/.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/ladder-cdk/ladder/app/ladder"
)

func main() {
	defer jsii.Close()
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ladder: %v\n", err)
		os.Exit(1)
	}
	app := awscdk.NewApp(nil)
	if _, _, err := ladder.New(app, root); err != nil {
		// One message naming the key, and nothing written to cdk.out.
		fmt.Fprintf(os.Stderr, "ladder: %v\n", err)
		jsii.Close()
		os.Exit(1)
	}
	app.Synth(nil)
}
