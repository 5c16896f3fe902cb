package config

import (
	"strings"
	"testing"
)

func TestDefaultWriterRegion(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"STORE": "dynamodb", "REDIS_URL": "redis://r:6379/0", "DYNAMODB_TABLE": "ladder-votes"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// Unset: no gate, and AWS_REGION may stay empty (the SDK's lookup).
	c, err := LoadFrom(Worker, env(base(nil), nil))
	if err != nil || c.DynamoDefaultWriterRegion != "" {
		t.Fatalf("without the variable: %+v, %v", c, err)
	}
	c, err = LoadFrom(Worker, env(base(map[string]string{"DYNAMODB_DEFAULT_WRITER_REGION": "us-east-1", "AWS_REGION": "eu-west-1"}), nil))
	if err != nil || c.DynamoDefaultWriterRegion != "us-east-1" || c.AWSRegion != "eu-west-1" {
		t.Fatalf("with the variable: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		vars map[string]string
		name string
	}{
		{map[string]string{"DYNAMODB_DEFAULT_WRITER_REGION": "us-east-1"}, "AWS_REGION"},
		{map[string]string{"DYNAMODB_DEFAULT_WRITER_REGION": "us-east-1", "AWS_REGION": "EU West"}, "AWS_REGION"},
		{map[string]string{"DYNAMODB_DEFAULT_WRITER_REGION": "US-EAST-1", "AWS_REGION": "eu-west-1"}, "DYNAMODB_DEFAULT_WRITER_REGION"},
	} {
		if _, err := LoadFrom(Worker, env(base(tc.vars), nil)); err == nil || !strings.HasPrefix(err.Error(), tc.name+":") {
			t.Errorf("%v: error %v, want one naming %s", tc.vars, err, tc.name)
		}
	}
	// A vote service writing DynamoDB itself would go around the fence.
	if _, err := LoadFrom(Vote, env(map[string]string{"VOTE_MODE": "direct", "STORE": "dynamodb", "DYNAMODB_TABLE": "t",
		"DYNAMODB_DEFAULT_WRITER_REGION": "us-east-1", "AWS_REGION": "us-east-1"}, nil)); err == nil ||
		!strings.Contains(err.Error(), "only the worker obeys the writer flag") {
		t.Errorf("direct-mode vote with a writer region: %v", err)
	}
	// Only the worker compares regions; the command reads the result
	// service's variables and needs no AWS_REGION of its own.
	if _, err := LoadFrom(Result, env(map[string]string{"STORE": "dynamodb", "DYNAMODB_TABLE": "t",
		"DYNAMODB_DEFAULT_WRITER_REGION": "us-east-1"}, nil)); err != nil {
		t.Fatalf("result: %v", err)
	}
}

func TestValidRegion(t *testing.T) {
	for _, s := range []string{"us-east-1", "eu-central-2", "ap-southeast-4", "local", "x1"} {
		if !ValidRegion(s) {
			t.Errorf("%q rejected", s)
		}
	}
	for _, s := range []string{"", "US-EAST-1", "us_east_1", "us east 1", "-us", "us-", "us--east", "us-east-1\n",
		"a\"b", strings.Repeat("a", 33)} {
		if ValidRegion(s) {
			t.Errorf("%q accepted", s)
		}
	}
}
