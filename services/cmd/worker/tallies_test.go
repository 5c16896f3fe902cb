package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func envOf(vars map[string]string) config.Env {
	return config.Env{Getenv: func(k string) string { return vars[k] }, ReadFile: os.ReadFile, Hostname: os.Hostname, Pid: os.Getpid()}
}

// tallies runs `worker tallies args...` in process.
func tallies(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = runTallies(ctx, args, envOf(vars), &out, &errb)
	return code, out.String(), errb.String()
}

// oneLine decodes stdout, which must be exactly one JSON line.
func oneLine(t *testing.T, stdout string, v any) {
	t.Helper()
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout is not one line: %q", stdout)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
}

type repairJSON struct {
	Store  string    `json:"store"`
	Before checkJSON `json:"before"`
	After  checkJSON `json:"after"`
}

func ids(n int) string { return fmt.Sprintf("%016x", n) }

func TestTalliesUsageAndConfigErrorsExit2(t *testing.T) {
	db := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/x"}
	for _, args := range [][]string{nil, {"bogus"}, {"check", "extra"}, {"check", "-force"}, {"repair", "-x"}} {
		if code, out, errOut := tallies(t, db, args...); code != 2 || out != "" || !strings.Contains(errOut, "usage: worker tallies") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the usage", args, code, out, errOut)
		}
	}
	if code, _, errOut := tallies(t, map[string]string{}, "check"); code != 2 || !strings.Contains(errOut, "DATABASE_URL") {
		t.Errorf("check without DATABASE_URL: exit %d, stderr %q", code, errOut)
	}
	// The server does not answer: an error, not a verdict.
	if code, out, _ := tallies(t, db, "check"); code != 2 || out != "" {
		t.Errorf("check of an unreachable database: exit %d, stdout %q", code, out)
	}
}

// PostgreSQL: check (no Redis needed), drift, online repair, check again.
func TestTalliesCommandPostgres(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.MigratedDatabase(t)
	st, err := store.OpenPostgres(ctx, store.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.ApplyVotes(ctx, []ballot.Vote{{VoterID: ids(1), Option: "a", CastAt: 1}, {VoterID: ids(2), Option: "b", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DATABASE_URL": dbURL}
	var c checkJSON
	code, out, errOut := tallies(t, vars, "check")
	oneLine(t, out, &c)
	if code != 0 || !c.OK || c.Store != "postgres" || c.Stored != (counts{1, 1}) || c.Recount != (counts{1, 1}) {
		t.Fatalf("check of exact tallies: exit %d, %+v (stderr %q)", code, c, errOut)
	}
	if _, err := testenv.Conn(t, dbURL).Exec(ctx, "UPDATE tallies SET count = count + 2 WHERE option = 'b'"); err != nil {
		t.Fatal(err)
	}
	code, out, _ = tallies(t, vars, "check")
	oneLine(t, out, &c)
	if code != 1 || c.OK || c.Drift != (counts{0, 2}) || c.Stored != (counts{1, 3}) {
		t.Fatalf("check after drift: exit %d, %+v; want 1 and drift b=2", code, c)
	}
	var r repairJSON
	code, out, errOut = tallies(t, vars, "repair")
	oneLine(t, out, &r)
	if code != 0 || r.Before.Drift != (counts{0, 2}) || !r.After.OK || r.After.Stored != (counts{1, 1}) {
		t.Fatalf("repair: exit %d, %+v (stderr %q)", code, r, errOut)
	}
	if code, out, _ := tallies(t, vars, "check"); code != 0 {
		t.Fatalf("check after the repair: exit %d, %s", code, out)
	}
}

// DynamoDB, through the binary: the repair refuses while a worker of this
// queue (not of another prefix) has a live heartbeat, unless -force.
func TestTalliesCommandDynamoDB(t *testing.T) {
	ctx := context.Background()
	endpoint, table := testenv.DynamoDB(t)
	st, err := store.OpenDynamoDB(ctx, store.DynamoOptions{Table: table, Region: testenv.DynamoRegion, Endpoint: endpoint,
		AccessKey: testenv.DynamoAccessKey, SecretKey: testenv.DynamoSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ApplyVotes(ctx, []ballot.Vote{{VoterID: ids(1), Option: "a", CastAt: 1}, {VoterID: ids(2), Option: "b", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	drift := func() {
		t.Helper()
		_, err := st.Client().UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("tally#%02d", store.ShardOf(ids(1)))}},
			UpdateExpression:          aws.String("ADD a :n"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "-1"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	drift()
	// A crashed worker's intent: voter 3 counted by the recount only.
	if _, err := st.Begin(ctx, ballot.Vote{VoterID: ids(3), Option: "b", CastAt: 2}); err != nil {
		t.Fatal(err)
	}

	redisURL, prefix := testenv.Redis(t)
	_, otherPrefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, redisURL)
	env := []string{"STORE=dynamodb", "DYNAMODB_TABLE=" + table, "DYNAMODB_ENDPOINT=" + endpoint,
		"AWS_REGION=" + testenv.DynamoRegion, "AWS_ACCESS_KEY_ID=" + testenv.DynamoAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + testenv.DynamoSecretKey, "AWS_EC2_METADATA_DISABLED=true"}
	withRedis := append(env[:len(env):len(env)], "REDIS_URL="+redisURL, "REDIS_KEY_PREFIX="+prefix)

	var c checkJSON
	code, out, errOut := runMain(t, env, "tallies", "check")
	oneLine(t, out, &c)
	if code != 1 || c.Store != "dynamodb" || c.Stored != (counts{0, 1}) || c.Recount != (counts{1, 2}) || c.Drift != (counts{-1, -1}) || c.Pending != 1 {
		t.Fatalf("check: exit %d, %+v (stderr %q); want 1, stored a=0 b=1, recount a=1 b=2, 1 pending", code, c, errOut)
	}

	// Without Redis the repair cannot tell whether workers run.
	if code, out, errOut := runMain(t, env, "tallies", "repair"); code != 2 || out != "" || !strings.Contains(errOut, "REDIS_URL") {
		t.Fatalf("repair without REDIS_URL: exit %d, stdout %q, stderr %q; want 2 naming REDIS_URL", code, out, errOut)
	}
	w := queue.NewConsumer(rdb, queue.NewKeys(prefix), "worker-7", time.Minute)
	if err := w.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := queue.NewConsumer(rdb, queue.NewKeys(otherPrefix), "other-queue", time.Minute).Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runMain(t, withRedis, "tallies", "repair"); code != 1 || out != "" || !strings.Contains(errOut, "worker-7") ||
		strings.Contains(errOut, "other-queue") {
		t.Fatalf("repair with a live worker: exit %d, stdout %q, stderr %q; want 1 naming worker-7 only", code, out, errOut)
	}
	if code, _, _ := runMain(t, env, "tallies", "check"); code != 1 {
		t.Fatalf("a refused repair changed the tallies: check exit %d", code)
	}
	var r repairJSON
	code, out, errOut = runMain(t, withRedis, "tallies", "repair", "-force")
	oneLine(t, out, &r)
	if code != 0 || r.Before != c || !r.After.OK || r.After.Stored != (counts{1, 2}) {
		t.Fatalf("repair -force: exit %d, %+v (stderr %q); want 0, before = the check, after ok a=1 b=2", code, r, errOut)
	}
	if code, out, _ := runMain(t, env, "tallies", "check"); code != 0 {
		t.Fatalf("check after the repair: exit %d, %s", code, out)
	}

	// Once the worker stopped (its heartbeat gone), no -force is needed.
	drift()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runMain(t, withRedis, "tallies", "repair")
	oneLine(t, out, &r)
	if code != 0 || r.Before.Drift != (counts{-1, 0}) || !r.After.OK {
		t.Fatalf("repair with the workers stopped: exit %d, %+v (stderr %q)", code, r, errOut)
	}
}

func TestGlobEscape(t *testing.T) {
	if got := globEscape(`a*b?[c]\`); got != `a\*b\?\[c\]\\` {
		t.Fatalf("globEscape = %q", got)
	}
}
