// Command db-migrate is the onEvent handler of a CloudFormation custom
// resource (CDK Provider framework) that brings a rung's PostgreSQL schema up
// to the version the template asks for. The migrations are the voting app's
// own (github.com/ladder-cdk/ladder/services/schema, embedded in this binary),
// so the schema has one source of truth; the services no longer create
// tables at start from Tier 2 on.
//
//   - Create and Update apply the pending migrations up to the resource's
//     SchemaVersion property, each in its own transaction under the schema
//     package's advisory lock; a database already at (or past) that version
//     is left unchanged, so a retried or rolled-back deploy is harmless.
//   - Delete leaves the data and the schema alone: deleting the stack or
//     replacing this resource must never drop votes.
//   - The database credentials are read from Secrets Manager at run time (the
//     template holds only the secret's ARN) and are never logged.
//   - A failure is returned as an error whose message is the reason the
//     Provider framework reports to CloudFormation.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	h := &Handler{Secrets: secretsmanager.NewFromConfig(cfg), Log: log}
	lambda.Start(h.Handle)
}
