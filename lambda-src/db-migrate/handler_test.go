package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ladder-cdk/ladder/services/schema"
)

const testSecretArn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:ladder-db-AbCdEf"

// fakeSecrets serves one secret value and counts reads. With stage set, it
// plays a secret whose versions change between reads: stage(stage, n) is the
// value of the n-th read (from 1) of that stage ("" when the stage does not
// exist).
type fakeSecrets struct {
	value string
	err   error
	reads int
	asked string
	stage func(stage string, n int) string
	seen  map[string]int
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.reads++
	f.asked = aws.ToString(in.SecretId)
	if f.err != nil {
		return nil, f.err
	}
	if f.stage != nil {
		st := aws.ToString(in.VersionStage)
		if st == "" {
			st = "AWSCURRENT"
		}
		if f.seen == nil {
			f.seen = map[string]int{}
		}
		f.seen[st]++
		v := f.stage(st, f.seen[st])
		if v == "" {
			return nil, errors.New("ResourceNotFoundException: no version with stage " + st)
		}
		return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(f.value)}, nil
}

func event(typ cfn.RequestType, props map[string]any) cfn.Event {
	return cfn.Event{
		RequestType: typ, RequestID: "req-1", LogicalResourceID: "Schema",
		StackID: "arn:aws:cloudformation:us-west-2:123456789012:stack/Ladder-Tier2/x", ResourceType: "Custom::LadderSchema",
		ResourceProperties: props,
	}
}

func goodProps() map[string]any {
	return map[string]any{PropSecretArn: testSecretArn, PropSchemaVersion: strconv.Itoa(schema.Latest())}
}

func newHandler(secret *fakeSecrets, logs *bytes.Buffer) *Handler {
	return &Handler{Secrets: secret, Log: slog.New(slog.NewJSONHandler(logs, nil)), ConnectFor: 200 * time.Millisecond}
}

func TestDeleteLeavesTheDatabaseAlone(t *testing.T) {
	sec := &fakeSecrets{err: errors.New("must not be called")}
	var logs bytes.Buffer
	ev := event(cfn.RequestDelete, goodProps())
	ev.PhysicalResourceID = "ladder-schema:ladder"
	resp, err := newHandler(sec, &logs).Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.PhysicalResourceID != "ladder-schema:ladder" {
		t.Errorf("delete must keep the physical id, got %q", resp.PhysicalResourceID)
	}
	if sec.reads != 0 {
		t.Errorf("delete read the secret %d times; it must not even connect", sec.reads)
	}
}

// Every failure comes back as an error whose message is the reason
// CloudFormation shows: it names what is wrong and never quotes the secret.
func TestFailuresGiveAClearReason(t *testing.T) {
	const password = "s3cret-Pa55word-never-shown"
	okSecret := `{"host":"127.0.0.1","port":1,"username":"ladder","password":"` + password + `","dbname":"ladder"}`
	with := func(k string, v any) map[string]any {
		p := goodProps()
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
		return p
	}
	cases := []struct {
		name   string
		typ    cfn.RequestType
		props  map[string]any
		secret *fakeSecrets
		want   string
	}{
		{"unknown request", "Upsert", goodProps(), &fakeSecrets{value: okSecret}, `unknown request type "Upsert"`},
		{"no secret arn", cfn.RequestCreate, with(PropSecretArn, nil), &fakeSecrets{value: okSecret}, "property SecretArn is required"},
		{"bad version", cfn.RequestCreate, with(PropSchemaVersion, "three"), &fakeSecrets{value: okSecret}, `property SchemaVersion must be a positive integer, got "three"`},
		{"no version", cfn.RequestUpdate, with(PropSchemaVersion, nil), &fakeSecrets{value: okSecret}, "property SchemaVersion must be a positive integer"},
		{"version ahead of the function", cfn.RequestUpdate, with(PropSchemaVersion, strconv.Itoa(schema.Latest()+1)), &fakeSecrets{value: okSecret},
			"embeds migrations up to " + strconv.Itoa(schema.Latest())},
		{"secret unreadable", cfn.RequestCreate, goodProps(), &fakeSecrets{err: errors.New("AccessDeniedException: not authorized")},
			"read secret " + testSecretArn + ": AccessDeniedException"},
		{"secret not json", cfn.RequestCreate, goodProps(), &fakeSecrets{value: "password=" + password}, "is not JSON with host, port, username, password"},
		{"secret lacks fields", cfn.RequestCreate, goodProps(), &fakeSecrets{value: `{"host":"db","password":"` + password + `"}`}, "lacks username"},
		{"no database name", cfn.RequestCreate, goodProps(), &fakeSecrets{value: `{"host":"db","username":"u","password":"` + password + `"}`},
			"no database name: set the DatabaseName property or dbname in secret"},
		{"bad port", cfn.RequestCreate, goodProps(), &fakeSecrets{value: `{"host":"db","port":"http","username":"u","password":"p","dbname":"d"}`},
			`secret field port must be a TCP port, got "http"`},
		// Port 1 on loopback refuses connections: retried for ConnectFor, then reported.
		{"database unreachable", cfn.RequestCreate, goodProps(), &fakeSecrets{value: okSecret},
			`connect to database "ladder" on 127.0.0.1:1 as ladder`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			resp, err := newHandler(c.secret, &logs).Handle(context.Background(), event(c.typ, c.props))
			if err == nil {
				t.Fatalf("no error; response %+v", resp)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("reason %q\nwant it to contain %q", err, c.want)
			}
			for what, s := range map[string]string{"reason": err.Error(), "logs": logs.String()} {
				if strings.Contains(s, password) {
					t.Errorf("the password appears in the %s: %s", what, s)
				}
			}
		})
	}
}

func TestPropertiesOverrideTheSecretsDatabaseName(t *testing.T) {
	sec := &fakeSecrets{value: `{"host":"db.internal","port":6432,"username":"app","password":"pw","dbname":"postgres"}`}
	p := goodProps()
	p[PropDatabaseName] = "ladder"
	var logs bytes.Buffer
	_, err := newHandler(sec, &logs).Handle(context.Background(), event(cfn.RequestCreate, p))
	if err == nil || !strings.Contains(err.Error(), `database "ladder" on db.internal:6432 as app`) {
		t.Fatalf("want a connect error naming the overriding database, got %v", err)
	}
	if sec.asked != testSecretArn {
		t.Errorf("read secret %q, want %q", sec.asked, testSecretArn)
	}
}

// The connection is TLS (sslmode=require) and the password is set on the
// parsed config, never in the URL.
func TestConnConfigRequiresTLS(t *testing.T) {
	h := &Handler{}
	cfg, where, err := h.connConfig(credentials{Host: "db", Port: "5432", Username: "u", Password: "p@ss word/?", DBName: "x"}, "ladder")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSConfig == nil || len(cfg.Fallbacks) != 0 {
		t.Errorf("want TLS with no plaintext fallback, got TLS=%v fallbacks=%d", cfg.TLSConfig != nil, len(cfg.Fallbacks))
	}
	if cfg.Password != "p@ss word/?" || cfg.Database != "ladder" || cfg.Host != "db" || cfg.Port != 5432 {
		t.Errorf("config = %s@%s:%d/%s pw=%q", cfg.User, cfg.Host, cfg.Port, cfg.Database, cfg.Password)
	}
	if strings.Contains(where, "p@ss") {
		t.Errorf("description %q holds the password", where)
	}
}
