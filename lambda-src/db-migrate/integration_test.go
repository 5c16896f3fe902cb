package main

// Integration tests against the real PostgreSQL started by
// scripts/test-deps.sh (LADDER_TEST_DATABASE_URL, a role with CREATEDB).
// Each test makes its own database and drops it at the end. The server has
// TLS on (Debian's default snakeoil certificate), so the handler's
// sslmode=require is exercised for real.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/jackc/pgx/v5"

	"github.com/ladder-cdk/ladder/services/schema"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// testDatabase creates an empty database and returns the RDS-style secret
// JSON for it (as Secrets Manager would hold it) and a direct connection.
func testDatabase(t *testing.T) (secretJSON string, conn *pgx.Conn, name string) {
	t.Helper()
	raw := testenv.Database(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	name = strings.TrimPrefix(u.Path, "/")
	pw, _ := u.User.Password()
	port, _ := strconv.Atoi(u.Port())
	secret, _ := json.Marshal(map[string]any{
		"engine": "postgres", "host": u.Hostname(), "port": port,
		"username": u.User.Username(), "password": pw, "dbname": name,
	})
	return string(secret), testenv.Conn(t, raw), name
}

// shape is the database's tables and columns plus the migration history, as
// text: equal shapes mean nothing was changed.
func shape(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var cols, hist string
	ctx := context.Background()
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(table_name||'.'||column_name||':'||data_type, ',' ORDER BY table_name, column_name), '')
		FROM information_schema.columns WHERE table_schema = 'public'`).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(version||'@'||applied_at::text, ',' ORDER BY version), '') FROM schema_migrations`).Scan(&hist); err != nil {
		t.Fatal(err)
	}
	return cols + "\n" + hist
}

func all(upTo int) string {
	var vs []string
	for v := 1; v <= upTo; v++ {
		vs = append(vs, strconv.Itoa(v))
	}
	return strings.Join(vs, ",")
}

// Create on an empty database applies every migration; running it again
// (CloudFormation retries, an Update with the same version) changes nothing.
func TestCreateTwiceAppliesOnceAndThenChangesNothing(t *testing.T) {
	secret, conn, name := testDatabase(t)
	var logs bytes.Buffer
	h := newHandler(&fakeSecrets{value: secret}, &logs)
	latest := schema.Latest()

	resp, err := h.Handle(context.Background(), event(cfn.RequestCreate, goodProps()))
	if err != nil {
		t.Fatal(err)
	}
	if resp.PhysicalResourceID != "ladder-schema:"+name {
		t.Errorf("physical id = %q", resp.PhysicalResourceID)
	}
	if resp.Data["SchemaVersion"] != strconv.Itoa(latest) || resp.Data["Applied"] != all(latest) {
		t.Errorf("first run data = %v, want version %d applying %s", resp.Data, latest, all(latest))
	}
	if v, err := schema.Version(context.Background(), conn); err != nil || v != latest {
		t.Fatalf("database version = %d, %v; want %d", v, err, latest)
	}
	before := shape(t, conn)

	for _, typ := range []cfn.RequestType{cfn.RequestCreate, cfn.RequestUpdate} {
		ev := event(typ, goodProps())
		ev.PhysicalResourceID = resp.PhysicalResourceID
		again, err := h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("%s again: %v", typ, err)
		}
		if again.Data["Applied"] != "" || again.Data["SchemaVersion"] != strconv.Itoa(latest) {
			t.Errorf("%s again: data = %v, want nothing applied at version %d", typ, again.Data, latest)
		}
		if again.PhysicalResourceID != resp.PhysicalResourceID {
			t.Errorf("%s again: physical id changed %q -> %q (CloudFormation would delete the old one)", typ, resp.PhysicalResourceID, again.PhysicalResourceID)
		}
		if after := shape(t, conn); after != before {
			t.Errorf("%s again changed the database:\nbefore %s\nafter  %s", typ, before, after)
		}
	}
	if strings.Contains(logs.String(), `"password"`) || strings.Contains(logs.String(), "ladder_test@") {
		t.Errorf("logs mention credentials: %s", logs.String())
	}
}

// An Update after a new migration file brings an older database up to date
// and keeps its votes; the tallies are rebuilt from them.
func TestUpdateBringsAnOlderSchemaUpToDate(t *testing.T) {
	secret, conn, _ := testDatabase(t)
	ctx := context.Background()
	if applied, err := schema.ApplyUpTo(ctx, conn, 1); err != nil || len(applied) != 1 {
		t.Fatalf("make a version-1 database: %v %v", applied, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO votes (id, vote) VALUES ('1111111111111111','a'),('2222222222222222','b'),('3333333333333333','a')`); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := newHandler(&fakeSecrets{value: secret}, &logs)
	old := goodProps()
	old[PropSchemaVersion] = "1"
	ev := event(cfn.RequestUpdate, goodProps())
	ev.PhysicalResourceID = "ladder-schema:existing"
	ev.OldResourceProperties = old
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	latest := schema.Latest()
	var want []string
	for v := 2; v <= latest; v++ {
		want = append(want, strconv.Itoa(v))
	}
	if resp.Data["Applied"] != strings.Join(want, ",") || resp.Data["SchemaVersion"] != strconv.Itoa(latest) {
		t.Errorf("data = %v, want applied %v up to %d", resp.Data, want, latest)
	}
	if resp.PhysicalResourceID != "ladder-schema:existing" {
		t.Errorf("update changed the physical id to %q", resp.PhysicalResourceID)
	}
	var a, b, rows int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count FROM tallies WHERE option='a'), (SELECT count FROM tallies WHERE option='b'), (SELECT count(*) FROM votes)`).Scan(&a, &b, &rows); err != nil {
		t.Fatal(err)
	}
	if a != 2 || b != 1 || rows != 3 {
		t.Errorf("after upgrade a=%d b=%d rows=%d, want 2, 1, 3", a, b, rows)
	}

	// A rollback re-sends the old properties: asking for an older version
	// than the database has changes nothing and reports what is there.
	back := event(cfn.RequestUpdate, old)
	back.PhysicalResourceID = resp.PhysicalResourceID
	before := shape(t, conn)
	r2, err := h.Handle(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Data["Applied"] != "" || r2.Data["SchemaVersion"] != strconv.Itoa(latest) || shape(t, conn) != before {
		t.Errorf("rollback to version 1: data = %v; want nothing applied and version %d kept", r2.Data, latest)
	}
}

func TestDeleteKeepsTheVotes(t *testing.T) {
	secret, conn, _ := testDatabase(t)
	ctx := context.Background()
	var logs bytes.Buffer
	h := newHandler(&fakeSecrets{value: secret}, &logs)
	if _, err := h.Handle(ctx, event(cfn.RequestCreate, goodProps())); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO votes (id, vote, cast_at) VALUES ('1111111111111111','a', 1)`); err != nil {
		t.Fatal(err)
	}
	before := shape(t, conn)
	ev := event(cfn.RequestDelete, goodProps())
	ev.PhysicalResourceID = "ladder-schema:x"
	if _, err := h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM votes").Scan(&n); err != nil || n != 1 || shape(t, conn) != before {
		t.Fatalf("after delete: %d votes (%v), schema changed: %v", n, err, shape(t, conn) != before)
	}
}

// A wrong password is an answer from the server: reported at once, clearly,
// without retrying for minutes and without the password in the reason.
func TestWrongPasswordFailsFastAndClearly(t *testing.T) {
	secret, _, _ := testDatabase(t)
	var m map[string]any
	_ = json.Unmarshal([]byte(secret), &m)
	m["password"] = "definitely-Wrong-pw-123"
	bad, _ := json.Marshal(m)
	var logs bytes.Buffer
	h := newHandler(&fakeSecrets{value: string(bad)}, &logs)
	h.ConnectFor = time.Minute
	start := time.Now()
	_, err := h.Handle(context.Background(), event(cfn.RequestCreate, goodProps()))
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("want a password authentication error, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s: an authentication failure must not be retried", d)
	}
	if strings.Contains(err.Error()+logs.String(), "definitely-Wrong-pw-123") {
		t.Errorf("the password leaked: %v\n%s", err, logs.String())
	}
}

// Secrets Manager rotates the secret as soon as the stack creates its
// rotation schedule, just before the migration runs: the password read first
// can be rejected because the rotation has already set a new one in the
// database. The handler then tries the secret's newer value, whether the
// rotation has finished (AWSCURRENT moved) or not yet (only AWSPENDING has it).
func TestPasswordRotatedWhileConnectingIsFollowed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stage func(good, old string) func(string, int) string
	}{
		{"rotation finished", func(good, old string) func(string, int) string {
			return func(stage string, n int) string {
				if stage != "AWSCURRENT" {
					return ""
				}
				if n == 1 {
					return old
				}
				return good
			}
		}},
		{"rotation not finished", func(good, old string) func(string, int) string {
			return func(stage string, n int) string {
				if stage == "AWSPENDING" {
					return good
				}
				return old
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, conn, _ := testDatabase(t)
			var m map[string]any
			_ = json.Unmarshal([]byte(good), &m)
			m["password"] = "the-Previous-pw-123"
			old, _ := json.Marshal(m)
			var logs bytes.Buffer
			h := newHandler(&fakeSecrets{stage: tc.stage(good, string(old))}, &logs)
			resp, err := h.Handle(context.Background(), event(cfn.RequestCreate, goodProps()))
			if err != nil {
				t.Fatalf("%v\nlogs:\n%s", err, logs.String())
			}
			if resp.Data["SchemaVersion"] != strconv.Itoa(schema.Latest()) {
				t.Errorf("data = %v", resp.Data)
			}
			var n int
			if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != schema.Latest() {
				t.Errorf("schema_migrations: %d rows (%v), want %d", n, err, schema.Latest())
			}
			if !strings.Contains(logs.String(), "password rejected") {
				t.Errorf("expected the retry to be logged; logs:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), "the-Previous-pw-123") {
				t.Errorf("a password leaked into the log:\n%s", logs.String())
			}
		})
	}
}

// The connection the handler makes is encrypted (the server reports TLS for
// the session), not merely configured for it.
func TestConnectionIsEncrypted(t *testing.T) {
	secret, _, name := testDatabase(t)
	var creds credentials
	if err := json.Unmarshal([]byte(secret), &creds); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := newHandler(&fakeSecrets{value: secret}, &logs)
	cfg, where, err := h.connConfig(creds, name)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := h.connect(context.Background(), cfg, where, h.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ssl bool
	if err := conn.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("session ssl = %v (%v), want an encrypted session", ssl, err)
	}
}

// Right after CloudFormation creates the cluster its endpoint may refuse
// connections for a while: the handler retries network failures within its
// budget and succeeds once the server is there. A loopback proxy that starts
// listening late plays the late database.
func TestConnectRetriesUntilTheDatabaseAppears(t *testing.T) {
	secret, _, _ := testDatabase(t)
	var m map[string]any
	_ = json.Unmarshal([]byte(secret), &m)
	target := net.JoinHostPort(m["host"].(string), strconv.Itoa(int(m["port"].(float64))))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close() // refused until the proxy below listens again
	m["port"] = addr.Port
	late, _ := json.Marshal(m)

	ready := make(chan net.Listener, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		l, err := net.Listen("tcp", addr.String())
		if err != nil {
			ready <- nil
			return
		}
		ready <- l
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() {
		if l := <-ready; l != nil {
			l.Close()
		}
	})

	var logs bytes.Buffer
	h := newHandler(&fakeSecrets{value: string(late)}, &logs)
	h.ConnectFor = 20 * time.Second
	resp, err := h.Handle(context.Background(), event(cfn.RequestCreate, goodProps()))
	if err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, logs.String())
	}
	if resp.Data["SchemaVersion"] != strconv.Itoa(schema.Latest()) {
		t.Errorf("data = %v", resp.Data)
	}
	if !strings.Contains(logs.String(), "database not reachable yet; retrying") {
		t.Errorf("expected a logged retry; logs:\n%s", logs.String())
	}
}
