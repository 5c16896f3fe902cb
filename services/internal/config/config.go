// Package config reads the services' configuration from environment
// variables (and mounted secret files), validating everything up front so a
// bad deployment fails at start with one error naming the variable.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Service selects which variables are required.
type Service string

const (
	Vote   Service = "vote"
	Worker Service = "worker"
	Result Service = "result"
)

// Stores (STORE).
const (
	StorePostgres = "postgres"
	StoreDynamoDB = "dynamodb"
)

// Vote modes.
const (
	ModeQueue  = "queue"
	ModeDirect = "direct"
)

// Config is everything a service needs. URLs carry credentials; log them only
// through Redact.
type Config struct {
	Service         Service
	Port            int
	OptionA         string
	OptionB         string
	VoteMode        string
	RedisURL        string
	RedisKeyPrefix  string
	DatabaseURL     string
	DatabaseReadURL string
	// DatabasePassword re-reads the password from DATABASE_PASSWORD_FILE or
	// DATABASE_SECRET_FILE; nil when the password is only in the URL. The
	// stores call it for every new connection, so a rotated secret (a
	// rewritten file) is used without a restart.
	DatabasePassword func() (string, error)
	WorkerID         string
	BatchSize        int
	BatchLinger      time.Duration
	HeartbeatTTL     time.Duration
	DBMigrate        bool
	ShutdownTimeout  time.Duration
	// Store is where votes are kept: StorePostgres (default) or
	// StoreDynamoDB (DYNAMODB_TABLE, AWS_REGION; credentials from the AWS
	// default chain). DynamoEndpoint (DYNAMODB_ENDPOINT) is for local
	// servers and tests only.
	Store          string
	DynamoTable    string
	AWSRegion      string
	DynamoEndpoint string
	// DynamoDefaultWriterRegion (DYNAMODB_DEFAULT_WRITER_REGION) turns on
	// the worker's writer-region gate (Tier 4, one global table in two
	// regions): only workers whose AWS_REGION is the writer region named
	// in the table's control item, or this region while there is no such
	// item, apply votes. Empty (the default) means no gate: every worker
	// writes, as in Tiers 1-3. With it set, the worker requires AWS_REGION.
	DynamoDefaultWriterRegion string
	// StaticBaseURL (STATIC_BASE_URL, vote and result only) is where the
	// pages link their assets, e.g. a CloudFront distribution holding the
	// same files under the same paths: https://host[:port][/path], no
	// trailing slash. "" (the default) links them on the service itself.
	StaticBaseURL string
}

// NeedsRedis reports whether this service talks to Redis.
func (c Config) NeedsRedis() bool {
	return c.Service == Worker || (c.Service == Vote && c.VoteMode == ModeQueue)
}

// NeedsStore reports whether this service talks to the vote store.
func (c Config) NeedsStore() bool {
	return c.Service != Vote || c.VoteMode == ModeDirect
}

// NeedsDatabase reports whether this service talks to PostgreSQL.
func (c Config) NeedsDatabase() bool {
	return c.NeedsStore() && c.Store == StorePostgres
}

// NeedsDynamoDB reports whether this service talks to DynamoDB.
func (c Config) NeedsDynamoDB() bool {
	return c.NeedsStore() && c.Store == StoreDynamoDB
}

// Env abstracts the process environment so tests need not mutate it.
type Env struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	Hostname func() (string, error)
	Pid      int
}

// FromOS is the real process environment.
func FromOS() Env {
	return Env{Getenv: os.Getenv, ReadFile: os.ReadFile, Hostname: os.Hostname, Pid: os.Getpid()}
}

// Load reads the configuration of svc from the process environment.
func Load(svc Service) (Config, error) { return LoadFrom(svc, FromOS()) }

var defaultPorts = map[Service]int{Vote: 8080, Result: 8081, Worker: 8082}

// ProbePort is the port `<service> healthcheck` probes: the configured one,
// else PORT, else the default, so the health check works even when the
// rest of the configuration would not load.
func ProbePort(svc Service) int {
	if c, err := Load(svc); err == nil {
		return c.Port
	}
	if p, err := strconv.Atoi(strings.TrimSpace(os.Getenv("PORT"))); err == nil {
		return p
	}
	return defaultPorts[svc]
}

// LoadFrom reads the configuration of svc from env.
func LoadFrom(svc Service, env Env) (Config, error) {
	c := Config{Service: svc}
	get := func(k, def string) string {
		if v := strings.TrimSpace(env.Getenv(k)); v != "" {
			return v
		}
		return def
	}
	var err error
	if c.Port, err = intVar(get("PORT", strconv.Itoa(defaultPorts[svc])), "PORT", 0, 65535); err != nil {
		return c, err
	}
	c.OptionA = get("OPTION_A", "Cats")
	c.OptionB = get("OPTION_B", "Dogs")
	c.VoteMode = get("VOTE_MODE", ModeQueue)
	if c.VoteMode != ModeQueue && c.VoteMode != ModeDirect {
		return c, fmt.Errorf("VOTE_MODE: must be %q or %q, got %q", ModeQueue, ModeDirect, c.VoteMode)
	}
	c.Store = get("STORE", StorePostgres)
	if c.Store != StorePostgres && c.Store != StoreDynamoDB {
		return c, fmt.Errorf("STORE: must be %q or %q, got %q", StorePostgres, StoreDynamoDB, c.Store)
	}
	c.RedisKeyPrefix = get("REDIS_KEY_PREFIX", "")
	if c.BatchSize, err = intVar(get("BATCH_SIZE", "1000"), "BATCH_SIZE", 1, 100000); err != nil {
		return c, err
	}
	if c.BatchLinger, err = durVar(get("BATCH_LINGER", "2ms"), "BATCH_LINGER"); err != nil {
		return c, err
	}
	if c.HeartbeatTTL, err = durVar(get("WORKER_HEARTBEAT_TTL", "15s"), "WORKER_HEARTBEAT_TTL"); err != nil {
		return c, err
	}
	if c.HeartbeatTTL < 100*time.Millisecond {
		return c, errors.New("WORKER_HEARTBEAT_TTL: must be at least 100ms")
	}
	if c.ShutdownTimeout, err = durVar(get("SHUTDOWN_TIMEOUT", "20s"), "SHUTDOWN_TIMEOUT"); err != nil {
		return c, err
	}
	switch m := strings.ToLower(get("DB_MIGRATE", "false")); m {
	case "true", "1", "yes":
		c.DBMigrate = true
	case "false", "0", "no":
	default:
		return c, fmt.Errorf("DB_MIGRATE: must be true or false, got %q", m)
	}
	c.WorkerID = get("WORKER_ID", "")
	if c.WorkerID == "" {
		h, herr := env.Hostname()
		if herr != nil || h == "" {
			h = "worker"
		}
		c.WorkerID = fmt.Sprintf("%s-%d", h, env.Pid)
	}
	if strings.ContainsAny(c.WorkerID, " \t\r\n") {
		return c, fmt.Errorf("WORKER_ID: must not contain whitespace, got %q", c.WorkerID)
	}

	if svc == Vote || svc == Result {
		if c.StaticBaseURL, err = staticBaseURL(get("STATIC_BASE_URL", "")); err != nil {
			return c, err
		}
	}

	if c.NeedsRedis() {
		if c.RedisURL, err = redisURL(env, get); err != nil {
			return c, err
		}
	}
	if c.NeedsDatabase() {
		if c.DatabaseURL, err = databaseURL(env, get); err != nil {
			return c, err
		}
		if r := get("DATABASE_READ_URL", ""); r != "" {
			if c.DatabaseReadURL, err = readURL(env, r, get); err != nil {
				return c, err
			}
		}
		c.DatabasePassword = passwordSource(env, get("DATABASE_PASSWORD_FILE", ""), get("DATABASE_SECRET_FILE", ""))
	}
	if c.NeedsDynamoDB() {
		if c.DynamoTable = get("DYNAMODB_TABLE", ""); c.DynamoTable == "" {
			return c, errors.New("DYNAMODB_TABLE: required when STORE=dynamodb")
		}
		// Empty means the SDK's own lookup (AWS_DEFAULT_REGION, profile).
		c.AWSRegion = get("AWS_REGION", "")
		c.DynamoEndpoint = get("DYNAMODB_ENDPOINT", "")
		if c.DynamoEndpoint != "" {
			if u, err := url.Parse(c.DynamoEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return c, fmt.Errorf("DYNAMODB_ENDPOINT: must be http(s)://host:port, got %q", c.DynamoEndpoint)
			}
		}
		if c.DynamoDefaultWriterRegion = get("DYNAMODB_DEFAULT_WRITER_REGION", ""); c.DynamoDefaultWriterRegion != "" {
			if !ValidRegion(c.DynamoDefaultWriterRegion) {
				return c, fmt.Errorf("DYNAMODB_DEFAULT_WRITER_REGION: must be a region name like us-east-1 (lowercase letters, digits, hyphens), got %q", c.DynamoDefaultWriterRegion)
			}
			// The gate compares the writer region with the worker's own,
			// which must therefore be explicit, not the SDK's guess.
			if svc == Worker && !ValidRegion(c.AWSRegion) {
				return c, fmt.Errorf("AWS_REGION: required (a region name like us-east-1) when DYNAMODB_DEFAULT_WRITER_REGION is set, got %q", c.AWSRegion)
			}
			// Only the worker obeys the writer flag: a direct-mode vote
			// service writing the same table would go around the fence.
			if svc == Vote {
				return c, errors.New("DYNAMODB_DEFAULT_WRITER_REGION: only the worker obeys the writer flag; a vote service writing DynamoDB directly (VOTE_MODE=direct) would not, so run vote in queue mode behind fenced workers")
			}
		}
	}
	return c, nil
}

// ValidRegion reports whether s looks like an AWS region name: lowercase
// letters and digits in hyphen-separated words (us-east-1), at most 32
// bytes. It is a syntax check, not a list: new regions keep working.
func ValidRegion(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// staticBaseURL checks STATIC_BASE_URL and drops trailing slashes. Only
// https: the pages are served over HTTPS in every tier that has a CDN, and an
// http:// asset there is blocked as mixed content. The origin goes into the
// Content-Security-Policy header, hence the strict host check.
func staticBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	bad := func(why string) error {
		return fmt.Errorf("STATIC_BASE_URL: %s; want https://host[:port][/path] (e.g. https://d111111abcdef8.cloudfront.net), got %q", why, raw)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", bad("not a URL")
	case u.Scheme != "https":
		return "", bad("must be an absolute https:// URL")
	case u.Opaque != "" || !validHost(u.Hostname()):
		return "", bad("must name a host")
	case strings.HasSuffix(u.Host, ":") || !validPort(u.Port()):
		return "", bad("port must be a number in [1, 65535]")
	case u.User != nil:
		return "", bad("must not carry credentials")
	case u.RawQuery != "" || u.ForceQuery:
		return "", bad("must not have a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", bad("must not have a fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// validHost accepts DNS names and IP literals (brackets already removed).
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func intVar(s, name string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: must be an integer in [%d, %d], got %q", name, lo, hi, s)
	}
	return n, nil
}

func durVar(s, name string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: must be a duration like 2s or 500ms, got %q", name, s)
	}
	return d, nil
}

func readSecret(env Env, name, path string) (string, error) {
	b, err := env.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", name, path, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", name, path)
	}
	return s, nil
}

func redisURL(env Env, get func(string, string) string) (string, error) {
	raw := get("REDIS_URL", "")
	if raw == "" {
		return "", errors.New("REDIS_URL: required (redis://host:6379/0 or rediss:// for TLS)")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return "", fmt.Errorf("REDIS_URL: must be redis://host:port[/db] or rediss://..., got %q", Redact(raw))
	}
	if f := get("REDIS_PASSWORD_FILE", ""); f != "" {
		pw, err := readSecret(env, "REDIS_PASSWORD_FILE", f)
		if err != nil {
			return "", err
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, pw)
	}
	return u.String(), nil
}

// rdsSecret is the JSON layout of an AWS Secrets Manager RDS secret.
type rdsSecret struct {
	Username string          `json:"username"`
	Password string          `json:"password"`
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"`
	DBName   string          `json:"dbname"`
}

// readSecretFile reads an RDS secret (JSON) and checks the fields a
// connection needs.
// passwordSource reads the current password from the file it came from, as
// DATABASE_URL does at start: DATABASE_PASSWORD_FILE wins over the secret.
func passwordSource(env Env, pwFile, secretFile string) func() (string, error) {
	switch {
	case pwFile != "":
		return func() (string, error) { return readSecret(env, "DATABASE_PASSWORD_FILE", pwFile) }
	case secretFile != "":
		return func() (string, error) {
			s, _, err := readSecretFile(env, secretFile)
			return s.Password, err
		}
	default:
		return nil
	}
}

func readSecretFile(env Env, f string) (rdsSecret, string, error) {
	var s rdsSecret
	b, err := env.ReadFile(f)
	if err != nil {
		return s, "", fmt.Errorf("DATABASE_SECRET_FILE: read %s: %w", f, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, "", fmt.Errorf("DATABASE_SECRET_FILE: %s is not an RDS secret JSON: %w", f, err)
	}
	port := strings.Trim(string(s.Port), `"`)
	if port == "" || port == "null" {
		port = "5432"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return s, "", fmt.Errorf("DATABASE_SECRET_FILE: port %q is not a number", port)
	}
	if s.Username == "" || s.Host == "" {
		return s, "", errors.New("DATABASE_SECRET_FILE: username and host are required")
	}
	if s.DBName == "" {
		s.DBName = "postgres"
	}
	return s, port, nil
}

func databaseURL(env Env, get func(string, string) string) (string, error) {
	raw := get("DATABASE_URL", "")
	if f := get("DATABASE_SECRET_FILE", ""); f != "" {
		s, port, err := readSecretFile(env, f)
		if err != nil {
			return "", err
		}
		u := url.URL{Scheme: "postgres", User: url.UserPassword(s.Username, s.Password),
			Host: net.JoinHostPort(s.Host, port), Path: "/" + s.DBName}
		// Keep query options (sslmode etc.) given in DATABASE_URL, if any.
		if raw != "" {
			if ru, err := url.Parse(raw); err == nil {
				u.RawQuery = ru.RawQuery
			}
		}
		raw = u.String()
	}
	if raw == "" {
		return "", errors.New("DATABASE_URL: required (postgres://user@host:5432/db), or set DATABASE_SECRET_FILE")
	}
	return withPasswordFile(env, raw, "DATABASE_URL", get("DATABASE_PASSWORD_FILE", ""))
}

// readURL is DATABASE_READ_URL with its credentials: from
// DATABASE_PASSWORD_FILE when set, otherwise from DATABASE_SECRET_FILE (the
// secret's user and password, and its database when the URL names none), so
// a reader endpoint needs no credentials of its own. Host, port and query
// options (sslmode) always come from the URL: the secret names the writer.
func readURL(env Env, raw string, get func(string, string) string) (string, error) {
	pwFile, secretFile := get("DATABASE_PASSWORD_FILE", ""), get("DATABASE_SECRET_FILE", "")
	if pwFile != "" || secretFile == "" {
		return withPasswordFile(env, raw, "DATABASE_READ_URL", pwFile)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", fmt.Errorf("DATABASE_READ_URL: must be postgres://host:port/db, got %q", Redact(raw))
	}
	s, _, err := readSecretFile(env, secretFile)
	if err != nil {
		return "", err
	}
	u.User = url.UserPassword(s.Username, s.Password)
	if u.Path == "" || u.Path == "/" {
		u.Path = "/" + s.DBName
	}
	return u.String(), nil
}

func withPasswordFile(env Env, raw, name, pwFile string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", fmt.Errorf("%s: must be postgres://user@host:port/db, got %q", name, Redact(raw))
	}
	if pwFile != "" {
		pw, err := readSecret(env, "DATABASE_PASSWORD_FILE", pwFile)
		if err != nil {
			return "", err
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, pw)
	}
	return u.String(), nil
}

// Redact hides the password of a URL for logging.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable url>"
	}
	return u.Redacted()
}
