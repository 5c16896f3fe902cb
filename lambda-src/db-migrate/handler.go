package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ladder-cdk/ladder/services/schema"
)

// Resource property names, set by stacks/dbmigrate.go.
const (
	PropSecretArn     = "SecretArn"
	PropDatabaseName  = "DatabaseName"
	PropSchemaVersion = "SchemaVersion"
)

// Response is what the Provider framework expects back from onEvent.
// Data becomes the resource's attributes (Fn::GetAtt).
type Response struct {
	PhysicalResourceID string            `json:"PhysicalResourceId"`
	Data               map[string]string `json:"Data,omitempty"`
}

// SecretReader is the one Secrets Manager call the handler makes.
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Handler handles custom resource events.
type Handler struct {
	Secrets SecretReader
	Log     *slog.Logger
	// SSLMode is libpq's sslmode; empty means "require": the connection is
	// encrypted, but the server certificate is not verified (verify-full
	// would need the RDS CA bundle shipped in the function). The database is
	// reachable only inside the VPC, from this function's security group.
	SSLMode string
	// ConnectFor is how long to keep retrying a connection that fails for a
	// network reason (DNS not yet resolvable, a writer still starting);
	// empty means until 30 s before the Lambda deadline. An answer from the
	// server (bad password, no such database) fails at once.
	ConnectFor time.Duration
}

// props are the custom resource's properties, validated.
type props struct {
	SecretArn     string
	DatabaseName  string
	SchemaVersion int
}

func parseProps(m map[string]any) (props, error) {
	var p props
	str := func(k string) (string, error) {
		switch v := m[k].(type) {
		case nil:
			return "", nil
		case string:
			return strings.TrimSpace(v), nil
		case float64: // only when invoked directly; CloudFormation sends strings
			return strconv.FormatFloat(v, 'f', -1, 64), nil
		default:
			return "", fmt.Errorf("property %s: want a string, got %T", k, v)
		}
	}
	var err error
	if p.SecretArn, err = str(PropSecretArn); err != nil {
		return p, err
	}
	if p.SecretArn == "" {
		return p, fmt.Errorf("property %s is required (the ARN of the database's credentials secret)", PropSecretArn)
	}
	if p.DatabaseName, err = str(PropDatabaseName); err != nil {
		return p, err
	}
	v, err := str(PropSchemaVersion)
	if err != nil {
		return p, err
	}
	if p.SchemaVersion, err = strconv.Atoi(v); err != nil || p.SchemaVersion < 1 {
		return p, fmt.Errorf("property %s must be a positive integer, got %q", PropSchemaVersion, v)
	}
	if latest := schema.Latest(); p.SchemaVersion > latest {
		// The template and this function are built from the same source,
		// so this means a stale function asset; refuse rather than report
		// a version that was never applied.
		return p, fmt.Errorf("the template asks for schema version %d but this function embeds migrations up to %d only", p.SchemaVersion, latest)
	}
	return p, nil
}

// credentials is an RDS-style secret. Only the fields used are read.
type credentials struct {
	Host     string   `json:"host"`
	Port     portText `json:"port"` // a number in RDS secrets; a string is accepted too
	Username string   `json:"username"`
	Password string   `json:"password"`
	DBName   string   `json:"dbname"`
}

// portText is the port as written in the secret, a JSON number or string,
// validated when the connection is configured.
type portText string

func (p *portText) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*p = portText(s)
		return nil
	}
	*p = portText(b)
	return nil
}

// credentials reads one version of the secret: stage "" is AWSCURRENT.
func (h *Handler) credentials(ctx context.Context, arn, stage string) (credentials, error) {
	var c credentials
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := h.Secrets.GetSecretValue(ctx, in)
	if err != nil {
		return c, fmt.Errorf("read secret %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return c, fmt.Errorf("secret %s has no string value (want RDS-style JSON with host, port, username, password)", arn)
	}
	if err := json.Unmarshal([]byte(*out.SecretString), &c); err != nil {
		// The decoder's message can quote the value; do not pass it on.
		return c, fmt.Errorf("secret %s is not JSON with host, port, username, password", arn)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"host", c.Host}, {"username", c.Username}, {"password", c.Password}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("secret %s lacks %s", arn, strings.Join(missing, ", "))
	}
	return c, nil
}

// Handle is the onEvent handler.
func (h *Handler) Handle(ctx context.Context, ev cfn.Event) (Response, error) {
	log := h.logger().With("request", ev.RequestType, "logicalId", ev.LogicalResourceID, "requestId", ev.RequestID)
	switch ev.RequestType {
	case cfn.RequestDelete:
		// Deleting the stack or replacing this resource keeps the data.
		log.Info("delete: leaving the database as it is")
		return Response{PhysicalResourceID: ev.PhysicalResourceID}, nil
	case cfn.RequestCreate, cfn.RequestUpdate:
	default:
		return Response{}, fmt.Errorf("unknown request type %q (want Create, Update or Delete)", ev.RequestType)
	}
	resp, err := h.migrate(ctx, ev, log)
	if err != nil {
		log.Error("migration failed", "error", err.Error())
		return Response{}, err
	}
	return resp, nil
}

func (h *Handler) migrate(ctx context.Context, ev cfn.Event, log *slog.Logger) (Response, error) {
	p, err := parseProps(ev.ResourceProperties)
	if err != nil {
		return Response{}, err
	}
	conn, dbname, where, err := h.open(ctx, p, log)
	if err != nil {
		return Response{}, err
	}
	log = log.With("database", where)
	defer conn.Close(context.WithoutCancel(ctx))

	applied, err := schema.ApplyUpTo(ctx, conn, p.SchemaVersion)
	if err != nil {
		// ApplyUpTo names the migration; each one is its own transaction,
		// so the versions before it stay applied and a retry resumes.
		return Response{}, fmt.Errorf("%s: %w (applied before the failure: %v)", where, err, applied)
	}
	version, err := schema.Version(ctx, conn)
	if err != nil {
		return Response{}, fmt.Errorf("%s: %w", where, err)
	}
	if version < p.SchemaVersion {
		return Response{}, fmt.Errorf("%s: schema is at version %d after migrating, want %d", where, version, p.SchemaVersion)
	}
	log.Info("schema up to date", "applied", applied, "version", version, "target", p.SchemaVersion)

	id := ev.PhysicalResourceID
	if ev.RequestType == cfn.RequestCreate || id == "" {
		// Stable for a database: an Update keeps the id, so CloudFormation
		// never sends a Delete for a resource that is merely updated.
		id = "ladder-schema:" + dbname
	}
	appliedStr := make([]string, len(applied))
	for i, v := range applied {
		appliedStr[i] = strconv.Itoa(v)
	}
	return Response{PhysicalResourceID: id, Data: map[string]string{
		"SchemaVersion": strconv.Itoa(version),
		"Applied":       strings.Join(appliedStr, ","),
	}}, nil
}

// maxPasswordTries bounds how many versions of the secret open tries when
// the server rejects a password.
const maxPasswordTries = 4

// open connects with the secret's current credentials. When the server
// rejects the password, it reads the secret again, AWSCURRENT and then
// AWSPENDING, and tries a password it has not tried yet: Secrets Manager
// rotates the secret as soon as its rotation schedule is created, which in
// the stack is just before this resource, and between the rotation's
// setSecret (the database has the new password) and finishSecret (AWSCURRENT
// names it) the password read first no longer works. A password that is
// simply wrong is still reported at once: a second read finds nothing new.
func (h *Handler) open(ctx context.Context, p props, log *slog.Logger) (conn *pgx.Conn, dbname, where string, err error) {
	creds, err := h.credentials(ctx, p.SecretArn, "")
	if err != nil {
		return nil, "", "", err
	}
	tried := map[string]bool{}
	for try := 1; ; try++ {
		dbname = p.DatabaseName
		if dbname == "" {
			dbname = creds.DBName
		}
		if dbname == "" {
			return nil, "", "", fmt.Errorf("no database name: set the %s property or dbname in secret %s", PropDatabaseName, p.SecretArn)
		}
		var cfg *pgx.ConnConfig
		if cfg, where, err = h.connConfig(creds, dbname); err != nil {
			return nil, "", "", err
		}
		if conn, err = h.connect(ctx, cfg, where, log); err == nil {
			return conn, dbname, where, nil
		}
		tried[creds.Password] = true
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" || try >= maxPasswordTries {
			return nil, "", "", err
		}
		next, ok := h.untriedCredentials(ctx, p.SecretArn, tried)
		if !ok {
			return nil, "", "", err
		}
		log.Warn("password rejected and the secret holds another one (a rotation in progress?); trying it", "try", try+1)
		creds = next
	}
}

// untriedCredentials is the secret's AWSCURRENT or else AWSPENDING version,
// whichever has a password not in tried.
func (h *Handler) untriedCredentials(ctx context.Context, arn string, tried map[string]bool) (credentials, bool) {
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING"} {
		if c, err := h.credentials(ctx, arn, stage); err == nil && !tried[c.Password] {
			return c, true
		}
	}
	return credentials{}, false
}

// connConfig builds the connection settings without ever putting the
// password into a string that could be logged: the URL has no password and
// it is set on the parsed config. where names the target for messages.
func (h *Handler) connConfig(c credentials, dbname string) (*pgx.ConnConfig, string, error) {
	port := 5432
	if c.Port != "" {
		p, err := strconv.Atoi(string(c.Port))
		if err != nil || p < 1 || p > 65535 {
			return nil, "", fmt.Errorf("secret field port must be a TCP port, got %q", string(c.Port))
		}
		port = p
	}
	mode := h.SSLMode
	if mode == "" {
		mode = "require"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(c.Username),
		Host:     net.JoinHostPort(c.Host, strconv.Itoa(port)),
		Path:     "/" + dbname,
		RawQuery: url.Values{"sslmode": {mode}, "application_name": {"ladder-db-migrate"}}.Encode(),
	}
	where := fmt.Sprintf("database %q on %s as %s", dbname, u.Host, c.Username)
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, "", fmt.Errorf("connection settings for %s: %w", where, err)
	}
	cfg.Password = c.Password
	cfg.ConnectTimeout = 10 * time.Second
	return cfg, where, nil
}

// connect retries network failures until the retry budget ends; an error
// answered by the server itself is final.
func (h *Handler) connect(ctx context.Context, cfg *pgx.ConnConfig, where string, log *slog.Logger) (*pgx.Conn, error) {
	budget := h.ConnectFor
	if budget == 0 {
		budget = 2 * time.Minute
		if dl, ok := ctx.Deadline(); ok {
			budget = time.Until(dl) - 30*time.Second
		}
	}
	give := time.Now().Add(max(budget, 0))
	wait := time.Second
	for attempt := 1; ; attempt++ {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || ctx.Err() != nil || time.Now().Add(wait).After(give) {
			return nil, fmt.Errorf("connect to %s (attempt %d): %w", where, attempt, err)
		}
		log.Warn("database not reachable yet; retrying", "attempt", attempt, "error", err.Error(), "retryIn", wait.String())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s (attempt %d): %w", where, attempt, err)
		}
		wait = min(2*wait, 10*time.Second)
	}
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
