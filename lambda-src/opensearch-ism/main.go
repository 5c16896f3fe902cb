// Command opensearch-ism is the onEvent handler of a CloudFormation custom
// resource (CDK Provider framework) that configures the Tier 3 log domain
// through its REST API, signed with the function's IAM role (SigV4, service
// "es"). The function's role is the domain's fine-grained access control
// master user, so it may call the security plugin.
//
// Create and Update, in order:
//   - PUT _plugins/_security/api/roles/<prefix>-writer: may create indices
//     matching <prefix>-* and write documents to them, nothing else;
//   - PUT _plugins/_security/api/rolesmapping/<prefix>-writer: that role's
//     backend roles are exactly the WriterRoleArns (Fluent Bit's pod role);
//   - PUT _plugins/_security/api/rolesmapping/all_access: the master role
//     plus AdminRoleArns (people's roles), exactly;
//   - the ISM policy <PolicyName>: state "hot", then "delete" once an index
//     is RetentionDays old, attached to new <prefix>-* indices by its
//     ism_template. Created if missing; replaced with optimistic concurrency
//     (if_seq_no/if_primary_term from the GET) only when it differs, after
//     which existing indices are moved to the new version (change_policy);
//   - PUT _index_template/<prefix>: shards and replicas of new indices and
//     a date mapping for @timestamp.
//
// Every step is a PUT of the whole desired state or a compare-then-update,
// so a retried or repeated event is harmless. Delete changes nothing: the
// domain is retained with the stack's deletion, and removing the policy
// would leave its indices growing forever.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	h := &Handler{
		Credentials: cfg.Credentials,
		Region:      cfg.Region,
		HTTP:        &http.Client{Timeout: 30 * time.Second},
		Log:         log,
	}
	lambda.Start(h.Handle)
}
