package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB credentials and region the tests use against dynalite, which
// accepts any.
const (
	DynamoAccessKey = "test"
	DynamoSecretKey = "test"
	DynamoRegion    = "us-east-1"
)

var dynalite struct {
	once     sync.Once
	cmd      *exec.Cmd
	endpoint string
	err      error
	missing  string
}

// repoRoot finds the repository root (the directory holding
// node_modules) from the working directory of the test.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "package.json")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "services")); err == nil {
				return d
			}
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// survivePeerResets keeps dynalite up when a client dies mid-request:
// dynalite 4.0.0 rethrows the request's ECONNRESET ("aborted") from an
// event handler, which kills the whole server, and the chaos test SIGKILLs
// workers mid-request on purpose. DynamoDB itself shrugs such clients off.
const survivePeerResets = `process.on("uncaughtException", (e) => {
  if (e && e.code === "ECONNRESET") return;
  console.error(e);
  process.exit(1);
});`

func startDynalite() {
	root := repoRoot()
	cli := filepath.Join(root, "node_modules", "dynalite", "cli.js")
	node := filepath.Join(root, "node_modules", ".bin", "node")
	if _, err := os.Stat(cli); err != nil || root == "" {
		dynalite.missing = "dynalite is not installed: run `npm ci` at the repository root"
		return
	}
	if _, err := os.Stat(node); err != nil {
		dynalite.missing = "the pinned node is not installed: run `npm ci` at the repository root"
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		dynalite.err = err
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(node, "--import", "data:text/javascript,"+url.PathEscape(survivePeerResets),
		cli, "--port", fmt.Sprint(port), "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		dynalite.err = fmt.Errorf("start dynalite: %w", err)
		return
	}
	dynalite.cmd = cmd
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			dynalite.err = fmt.Errorf("dynalite did not accept connections on %s: %w", addr, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	dynalite.endpoint = "http://" + addr
}

// StopDynalite stops the dynalite server this test binary started, if
// any; call it from TestMain after m.Run.
func StopDynalite() {
	if dynalite.cmd != nil {
		_ = dynalite.cmd.Process.Kill()
		_ = dynalite.cmd.Wait()
	}
}

// DynamoEndpoint starts (once per test binary) a dynalite server from the
// repository's node_modules and returns its endpoint. Without dynalite the
// test is skipped, or fails when CI is set.
func DynamoEndpoint(t testing.TB) string {
	t.Helper()
	dynalite.once.Do(startDynalite)
	if dynalite.missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(dynalite.missing)
		}
		t.Skip(dynalite.missing)
	}
	if dynalite.err != nil {
		t.Fatal(dynalite.err)
	}
	return dynalite.endpoint
}

// DynamoClient is a client for the dynalite server.
func DynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       DynamoRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(DynamoAccessKey, DynamoSecretKey, ""),
	})
}

// DynamoDB returns the dynalite endpoint and a fresh table named
// t_<random> with the store's key schema (partition key "pk", string),
// deleted when the test ends.
func DynamoDB(t testing.TB) (endpoint, table string) {
	t.Helper()
	endpoint = DynamoEndpoint(t)
	c := DynamoClient(endpoint)
	table = "t_" + Token()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create dynamodb table: %v", err)
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 200 * time.Millisecond
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 20*time.Second); err != nil {
		t.Fatalf("wait for dynamodb table: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return endpoint, table
}
