package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// writer runs `worker writer args...` in process.
func writer(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = runWriter(ctx, args, envOf(vars), &out, &errb)
	return code, out.String(), errb.String()
}

// dynamoEnv is the environment of a process using table on dynalite.
func dynamoEnv(endpoint, table string) []string {
	return []string{"STORE=dynamodb", "DYNAMODB_TABLE=" + table, "DYNAMODB_ENDPOINT=" + endpoint,
		"AWS_REGION=" + testenv.DynamoRegion, "AWS_ACCESS_KEY_ID=" + testenv.DynamoAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + testenv.DynamoSecretKey, "AWS_EC2_METADATA_DISABLED=true"}
}

func TestWriterUsageAndConfigErrorsExit2(t *testing.T) {
	dyn := map[string]string{"STORE": "dynamodb", "DYNAMODB_TABLE": "t", "DYNAMODB_ENDPOINT": "http://127.0.0.1:1"}
	for _, args := range [][]string{{"get"}, {"set"}, {"set", "a", "b"}, {"bogus", "x"}, {"-force"}} {
		if code, out, errOut := writer(t, dyn, args...); code != 2 || out != "" || !strings.Contains(errOut, "usage: worker writer") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the usage", args, code, out, errOut)
		}
	}
	for _, region := range []string{"US-EAST-1", "us_east_1", "", "us-east-1;rm", "-x"} {
		if code, out, errOut := writer(t, dyn, "set", region); code != 2 || out != "" || !strings.Contains(errOut, "invalid region") {
			t.Errorf("set %q: exit %d, stdout %q, stderr %q; want 2 and invalid region", region, code, out, errOut)
		}
	}
	for _, vars := range []map[string]string{{}, {"STORE": "postgres", "DATABASE_URL": "postgres://u@h/x"}} {
		if code, out, errOut := writer(t, vars); code != 2 || out != "" || !strings.Contains(errOut, "STORE must be \"dynamodb\"") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 naming STORE", vars, code, out, errOut)
		}
	}
	if code, _, errOut := writer(t, map[string]string{"STORE": "dynamodb"}); code != 2 || !strings.Contains(errOut, "DYNAMODB_TABLE") {
		t.Errorf("without DYNAMODB_TABLE: exit %d, stderr %q", code, errOut)
	}
}

// Through the binary, on a real table: the default, set, read back, and
// bad input that writes nothing.
func TestWriterCommand(t *testing.T) {
	ctx := context.Background()
	endpoint, table := testenv.DynamoDB(t)
	st, err := store.OpenDynamoDB(ctx, store.DynamoOptions{Table: table, Region: testenv.DynamoRegion, Endpoint: endpoint,
		AccessKey: testenv.DynamoAccessKey, SecretKey: testenv.DynamoSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	env := dynamoEnv(endpoint, table)
	withDefault := append(env[:len(env):len(env)], "DYNAMODB_DEFAULT_WRITER_REGION=us-east-1")
	var w writerJSON

	code, out, errOut := runMain(t, env, "writer")
	oneLine(t, out, &w)
	if code != 1 || w != (writerJSON{Source: "none"}) || !strings.Contains(errOut, "DYNAMODB_DEFAULT_WRITER_REGION") {
		t.Fatalf("no item, no default: exit %d, %+v (stderr %q); want 1 and source none", code, w, errOut)
	}
	code, out, errOut = runMain(t, withDefault, "writer")
	oneLine(t, out, &w)
	if code != 0 || w != (writerJSON{Writer: "us-east-1", Source: "default"}) {
		t.Fatalf("no item: exit %d, %+v (stderr %q); want 0 us-east-1 from the default", code, w, errOut)
	}

	code, out, errOut = runMain(t, env, "writer", "set", "eu-west-1")
	oneLine(t, out, &w)
	if code != 0 || w != (writerJSON{Writer: "eu-west-1", Source: "table"}) {
		t.Fatalf("set: exit %d, %+v (stderr %q)", code, w, errOut)
	}
	if r, found, err := st.WriterRegion(ctx); err != nil || !found || r != "eu-west-1" {
		t.Fatalf("stored writer region %q, %v, %v; want eu-west-1", r, found, err)
	}
	code, out, _ = runMain(t, withDefault, "writer")
	oneLine(t, out, &w)
	if code != 0 || w != (writerJSON{Writer: "eu-west-1", Source: "table"}) {
		t.Fatalf("after set: exit %d, %+v; want the table's eu-west-1 over the default", code, w)
	}

	if code, out, _ := runMain(t, env, "writer", "set", "EU-WEST-2"); code != 2 || out != "" {
		t.Fatalf("set of a bad region: exit %d, stdout %q; want 2", code, out)
	}
	if r, _, err := st.WriterRegion(ctx); err != nil || r != "eu-west-1" {
		t.Fatalf("a refused set changed the writer region to %q (%v)", r, err)
	}

	// An unreachable table is an error, not an answer.
	down := dynamoEnv("http://127.0.0.1:1", table)
	if code, out, _ := runMain(t, append(down, "DYNAMODB_DEFAULT_WRITER_REGION=us-east-1"), "writer"); code != 2 || out != "" {
		t.Fatalf("writer of an unreachable table: exit %d, stdout %q; want 2", code, out)
	}
}

// A worker of a region that is not the writer stands by: votes stay
// queued, the gauge says so, and it is healthy and ready.
func TestRunStandbyIsHealthy(t *testing.T) {
	endpoint, table := testenv.DynamoDB(t)
	redisURL, prefix := testenv.Redis(t)
	// The SDK reads its credentials from the process environment.
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.DynamoAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.DynamoSecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	vars := map[string]string{
		"STORE": "dynamodb", "DYNAMODB_TABLE": table, "DYNAMODB_ENDPOINT": endpoint,
		"AWS_REGION": "eu-west-1", "DYNAMODB_DEFAULT_WRITER_REGION": "us-east-1",
		"REDIS_URL": redisURL, "REDIS_KEY_PREFIX": prefix, "WORKER_ID": "standby-test",
		"WORKER_HEARTBEAT_TTL": "1s", "SHUTDOWN_TIMEOUT": "5s",
	}
	cfg, err := config.LoadFrom(config.Worker, envOf(vars))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := testenv.RedisClient(t, redisURL)
	keys := queue.NewKeys(prefix)
	p := queue.NewProducer(rdb, keys)
	for i := range 10 {
		b, err := ballot.Encode(ballot.Vote{VoterID: ids(i), Option: "a", CastAt: int64(i + 1)}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Push(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	done := make(chan error, 1)
	logs := &testenv.Logs{}
	go func() {
		done <- run(ctx, cfg, slog.New(slog.NewJSONHandler(io.MultiWriter(logs, t.Output()), nil)), ln)
	}()

	// The gauge starts at 1 before any read, so wait for the log line
	// that says the flag (here: the default) was read and named another
	// region.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"standby: writer region is us-east-1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no standby line naming us-east-1:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond) // longer than a fetch wait
	if n, err := rdb.LLen(ctx, keys.Votes()).Result(); err != nil || n != 10 {
		t.Fatalf("queue holds %d (%v) in standby, want all 10", n, err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+path); code != 200 {
			t.Errorf("%s in standby = %d %s, want 200", path, code, body)
		}
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "\nladder_worker_standby 1\n") {
		t.Error("ladder_worker_standby is not 1 in standby")
	}
	var ready map[string]string
	if _, body := get(t, base+"/readyz"); json.Unmarshal([]byte(body), &ready) != nil || ready["dynamodb"] != "ok" || ready["redis"] != "ok" {
		t.Errorf("/readyz = %s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of SIGTERM")
	}
}
