package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string, files map[string]string) Env {
	return Env{
		Getenv: func(k string) string { return vars[k] },
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, os.ErrNotExist
		},
		Hostname: func() (string, error) { return "box", nil },
		Pid:      7,
	}
}

func TestDefaults(t *testing.T) {
	c, err := LoadFrom(Worker, env(map[string]string{
		"REDIS_URL": "redis://r:6379/0", "DATABASE_URL": "postgres://u:p@db:5432/x",
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8082 || c.OptionA != "Cats" || c.OptionB != "Dogs" || c.VoteMode != ModeQueue ||
		c.WorkerID != "box-7" || c.BatchSize != 1000 || c.HeartbeatTTL != 15*time.Second || c.DBMigrate {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		svc  Service
		vars map[string]string
		want string
	}{
		{Vote, map[string]string{}, "REDIS_URL"},
		{Vote, map[string]string{"VOTE_MODE": "direct"}, "DATABASE_URL"},
		{Vote, map[string]string{"VOTE_MODE": "carrier-pigeon"}, "VOTE_MODE"},
		{Result, map[string]string{"DATABASE_URL": "postgres://h/x", "PORT": "http"}, "PORT"},
		{Worker, map[string]string{"DATABASE_URL": "postgres://h/x", "REDIS_URL": "http://r"}, "REDIS_URL"},
		{Worker, map[string]string{"DATABASE_URL": "postgres://h/x", "REDIS_URL": "redis://r", "BATCH_SIZE": "0"}, "BATCH_SIZE"},
		{Worker, map[string]string{"DATABASE_URL": "postgres://h/x", "REDIS_URL": "redis://r", "DB_MIGRATE": "maybe"}, "DB_MIGRATE"},
		{Result, map[string]string{"DATABASE_URL": "postgres://h/x", "DATABASE_PASSWORD_FILE": "/nope"}, "DATABASE_PASSWORD_FILE"},
		{Result, map[string]string{"DATABASE_SECRET_FILE": "/nope"}, "DATABASE_SECRET_FILE"},
		{Result, map[string]string{"DATABASE_URL": "postgres://h/x", "STORE": "mongo"}, "STORE"},
		{Result, map[string]string{"STORE": "dynamodb"}, "DYNAMODB_TABLE"},
		{Worker, map[string]string{"STORE": "dynamodb", "REDIS_URL": "redis://r", "DYNAMODB_TABLE": "v", "DYNAMODB_ENDPOINT": "localhost"}, "DYNAMODB_ENDPOINT"},
	}
	for _, tc := range cases {
		_, err := LoadFrom(tc.svc, env(tc.vars, nil))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s %v: err = %v, want it to name %s", tc.svc, tc.vars, err, tc.want)
		}
	}
}

func TestSecretsFromFiles(t *testing.T) {
	c, err := LoadFrom(Worker, env(map[string]string{
		"REDIS_URL":              "rediss://cache:6380/0",
		"REDIS_PASSWORD_FILE":    "/run/secrets/redis",
		"DATABASE_URL":           "postgres://app@db:5432/votes?sslmode=require",
		"DATABASE_PASSWORD_FILE": "/run/secrets/pg",
		"DATABASE_READ_URL":      "postgres://app@replica:5432/votes",
	}, map[string]string{"/run/secrets/redis": "r3dis\n", "/run/secrets/pg": "p@ss/word\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "rediss://:r3dis@cache:6380/0" {
		t.Errorf("RedisURL = %q", c.RedisURL)
	}
	if c.DatabaseURL != "postgres://app:p%40ss%2Fword@db:5432/votes?sslmode=require" {
		t.Errorf("DatabaseURL = %q", c.DatabaseURL)
	}
	if !strings.Contains(c.DatabaseReadURL, "replica") || !strings.Contains(c.DatabaseReadURL, "p%40ss") {
		t.Errorf("DatabaseReadURL = %q", c.DatabaseReadURL)
	}
	if r := Redact(c.DatabaseURL); strings.Contains(r, "word") {
		t.Errorf("Redact leaked the password: %s", r)
	}
}

func TestRDSSecret(t *testing.T) {
	c, err := LoadFrom(Result, env(map[string]string{"DATABASE_SECRET_FILE": "/s"}, map[string]string{
		"/s": `{"username":"admin","password":"x:y","host":"db.example","port":5432,"dbname":"ladder","engine":"postgres"}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://admin:x%3Ay@db.example:5432/ladder" {
		t.Fatalf("DatabaseURL = %q", c.DatabaseURL)
	}
	_ = errors.New
}

// Tier 2: the result service reads from Aurora's reader endpoint with the
// writer's secret (rotated, so never copied into a URL): the read URL takes
// the secret's credentials and keeps its own host and TLS options.
func TestReadURLTakesCredentialsFromTheSecretFile(t *testing.T) {
	secret := map[string]string{
		"/run/secrets/db-secret.json": `{"username":"ladder","password":"p@ss/word","host":"writer.example","port":5432,"dbname":"votes"}`,
	}
	for _, tc := range []struct{ read, want string }{
		{"postgres://reader.example:5432/votes?sslmode=verify-full&sslrootcert=/run/secrets/rds-ca.pem",
			"postgres://ladder:p%40ss%2Fword@reader.example:5432/votes?sslmode=verify-full&sslrootcert=/run/secrets/rds-ca.pem"},
		// No database in the URL: the secret's.
		{"postgres://reader.example:5432?sslmode=require", "postgres://ladder:p%40ss%2Fword@reader.example:5432/votes?sslmode=require"},
		// A user in the URL is replaced: the password belongs to the secret's user.
		{"postgres://someone@reader.example/votes", "postgres://ladder:p%40ss%2Fword@reader.example/votes"},
	} {
		c, err := LoadFrom(Result, env(map[string]string{
			"DATABASE_SECRET_FILE": "/run/secrets/db-secret.json",
			"DATABASE_URL":         "postgres://writer.example:5432/votes?sslmode=verify-full",
			"DATABASE_READ_URL":    tc.read,
		}, secret))
		if err != nil {
			t.Fatal(err)
		}
		if c.DatabaseReadURL != tc.want {
			t.Errorf("DATABASE_READ_URL %s: DatabaseReadURL = %q, want %q", tc.read, c.DatabaseReadURL, tc.want)
		}
		if c.DatabaseURL != "postgres://ladder:p%40ss%2Fword@writer.example:5432/votes?sslmode=verify-full" {
			t.Errorf("DatabaseURL = %q", c.DatabaseURL)
		}
	}
	// A password file still wins, as before.
	c, err := LoadFrom(Result, env(map[string]string{
		"DATABASE_SECRET_FILE": "/run/secrets/db-secret.json", "DATABASE_PASSWORD_FILE": "/pw",
		"DATABASE_READ_URL": "postgres://app@reader.example/votes",
	}, map[string]string{"/run/secrets/db-secret.json": secret["/run/secrets/db-secret.json"], "/pw": "other"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseReadURL != "postgres://app:other@reader.example/votes" {
		t.Errorf("with DATABASE_PASSWORD_FILE: DatabaseReadURL = %q", c.DatabaseReadURL)
	}
	for _, bad := range []string{"http://reader.example/votes", "postgres:///votes"} {
		_, err := LoadFrom(Result, env(map[string]string{
			"DATABASE_SECRET_FILE": "/run/secrets/db-secret.json", "DATABASE_READ_URL": bad,
		}, secret))
		if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_READ_URL") {
			t.Errorf("DATABASE_READ_URL=%s: err = %v, want it to name DATABASE_READ_URL", bad, err)
		}
	}
}

// A rotated secret is a rewritten file: DatabasePassword reads it anew
// each time, from the same file the URL's password came from.
func TestDatabasePasswordFollowsTheFile(t *testing.T) {
	files := map[string]string{
		"/s/db.json": `{"username":"app","password":"one","host":"db","port":5432,"dbname":"votes"}`,
		"/s/pw":      "first\n",
	}
	c, err := LoadFrom(Result, env(map[string]string{"DATABASE_SECRET_FILE": "/s/db.json"}, files))
	if err != nil {
		t.Fatal(err)
	}
	files["/s/db.json"] = `{"username":"app","password":"two","host":"db","port":5432,"dbname":"votes"}`
	if pw, err := c.DatabasePassword(); err != nil || pw != "two" {
		t.Fatalf("after rotation DatabasePassword() = %q, %v; want two", pw, err)
	}
	c, err = LoadFrom(Result, env(map[string]string{"DATABASE_URL": "postgres://app@db/votes", "DATABASE_PASSWORD_FILE": "/s/pw"}, files))
	if err != nil {
		t.Fatal(err)
	}
	files["/s/pw"] = "second\n"
	if pw, err := c.DatabasePassword(); err != nil || pw != "second" {
		t.Fatalf("DatabasePassword() = %q, %v; want second", pw, err)
	}
	c, err = LoadFrom(Result, env(map[string]string{"DATABASE_URL": "postgres://app:inline@db/votes"}, files))
	if err != nil || c.DatabasePassword != nil {
		t.Fatalf("a password only in the URL has no source to re-read: %v %v", err, c.DatabasePassword != nil)
	}
}

func TestDynamoDBStore(t *testing.T) {
	// With STORE=dynamodb no DATABASE_URL is needed.
	c, err := LoadFrom(Worker, env(map[string]string{
		"STORE": "dynamodb", "REDIS_URL": "redis://r:6379/0", "DYNAMODB_TABLE": "ladder-votes",
		"AWS_REGION": "eu-west-1", "DYNAMODB_ENDPOINT": "http://127.0.0.1:8000",
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.NeedsDynamoDB() || c.NeedsDatabase() || c.DynamoTable != "ladder-votes" || c.AWSRegion != "eu-west-1" ||
		c.DynamoEndpoint != "http://127.0.0.1:8000" || c.DatabaseURL != "" {
		t.Fatalf("unexpected config: %+v", c)
	}
	// The default stays PostgreSQL; the queue-mode vote service needs neither.
	if c, err = LoadFrom(Vote, env(map[string]string{"REDIS_URL": "redis://r", "STORE": "dynamodb"}, nil)); err != nil || c.NeedsDynamoDB() {
		t.Fatalf("queue-mode vote: %+v, %v", c, err)
	}
	if c, err = LoadFrom(Result, env(map[string]string{"DATABASE_URL": "postgres://h/x"}, nil)); err != nil || c.Store != StorePostgres || !c.NeedsDatabase() {
		t.Fatalf("default store: %+v, %v", c, err)
	}
}

// The health check must find the port even when the rest of the
// configuration would not load (a missing REDIS_URL must not make a
// running container look dead).
func TestProbePort(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("DATABASE_URL", "")
	t.Setenv("PORT", "9099")
	if p := ProbePort(Worker); p != 9099 {
		t.Fatalf("ProbePort with only PORT = %d, want 9099", p)
	}
	t.Setenv("PORT", "")
	if p := ProbePort(Result); p != 8081 {
		t.Fatalf("ProbePort with nothing set = %d, want the default 8081", p)
	}
}

func TestStaticBaseURL(t *testing.T) {
	cases := []struct {
		raw, want string // want "" with ok false: refused
		ok        bool
	}{
		{"", "", true}, // default: assets on the service itself
		{"https://d111111abcdef8.cloudfront.net", "https://d111111abcdef8.cloudfront.net", true},
		{"https://d111111abcdef8.cloudfront.net/", "https://d111111abcdef8.cloudfront.net", true},
		{"  https://cdn.example.com:8443//  ", "https://cdn.example.com:8443", true},
		{"https://cdn.example.com/ladder/", "https://cdn.example.com/ladder", true},
		{"HTTPS://[2001:db8::1]", "https://[2001:db8::1]", true},
		{"http://d111111abcdef8.cloudfront.net", "", false},
		{"//d111111abcdef8.cloudfront.net", "", false},
		{"d111111abcdef8.cloudfront.net", "", false},
		{"/static", "", false},
		{"https://cdn.example.com/?v=1", "", false},
		{"https://cdn.example.com?", "", false},
		{"https://cdn.example.com/#top", "", false},
		{"https://cdn.example.com#", "", false},
		{"https://", "", false},
		{"https:cdn.example.com", "", false},
		{"https://:443", "", false},
		{"https://cdn.example.com:", "", false},
		{"https://cdn.example.com:99999", "", false},
		{"https://user:pw@cdn.example.com", "", false},
		{"https://cdn;example.com", "", false},
		{"https://cdn example.com", "", false},
		{"ht tp://%%", "", false},
		{"not a url at all", "", false},
	}
	for _, tc := range cases {
		for _, svc := range []Service{Vote, Result} {
			c, err := LoadFrom(svc, env(map[string]string{
				"REDIS_URL": "redis://r:6379/0", "DATABASE_URL": "postgres://u:p@db:5432/x", "STATIC_BASE_URL": tc.raw,
			}, nil))
			switch {
			case tc.ok && err != nil:
				t.Errorf("%s %q: %v", svc, tc.raw, err)
			case tc.ok && c.StaticBaseURL != tc.want:
				t.Errorf("%s %q: StaticBaseURL = %q, want %q", svc, tc.raw, c.StaticBaseURL, tc.want)
			case !tc.ok && (err == nil || !strings.HasPrefix(err.Error(), "STATIC_BASE_URL: ")):
				t.Errorf("%s %q: err = %v (StaticBaseURL %q), want a STATIC_BASE_URL error", svc, tc.raw, err, c.StaticBaseURL)
			}
		}
	}
	// The worker links no pages: the variable is not its business.
	c, err := LoadFrom(Worker, env(map[string]string{
		"REDIS_URL": "redis://r:6379/0", "DATABASE_URL": "postgres://u:p@db:5432/x", "STATIC_BASE_URL": "http://x",
	}, nil))
	if err != nil || c.StaticBaseURL != "" {
		t.Fatalf("worker: %q, %v", c.StaticBaseURL, err)
	}
}
