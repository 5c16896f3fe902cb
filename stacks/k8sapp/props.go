// Package k8sapp builds every Kubernetes object the voting app needs on the
// Tier 3 and Tier 4 clusters (namespace, service accounts, Deployments,
// Services, Ingresses or TargetGroupBindings, autoscalers, disruption
// budgets, SecretProviderClasses and the Fluent Bit log shipper) from typed Go
// values: k8s.io/api structs, and small typed structs for the Secrets Store
// CSI driver's and the AWS Load Balancer Controller's CRDs. A misspelt field
// fails at compile time; Decode checks a rendered object strictly.
//
// The package is pure Go (no CDK): string fields may hold CDK token strings
// (image URIs, endpoints, ARNs); they pass through unchanged and CDK resolves
// them when the manifests are serialized into the template.
package k8sapp

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Names shared with the CDK side (Pod Identity associations are made there
// for these namespace/service-account pairs).
const (
	DefaultNamespace        = "ladder"
	DefaultLoggingNamespace = "ladder-logging"
	// AWS for Fluent Bit 3.x (Fluent Bit 4.x): Fluent Bit takes EKS Pod
	// Identity credentials only since 4.0; the 2.x line (Fluent Bit 1.9)
	// would fall back to the node's role. Pinned: a DaemonSet on every node
	// must not change under a re-pull.
	DefaultFluentBitImage = "public.ecr.aws/aws-observability/aws-for-fluent-bit:3.4.8"
	PartOf                = "ladder"

	// Where the Secrets Store CSI driver writes the credentials in every pod.
	SecretsDir        = "/run/secrets"
	DatabaseFile      = "database.json"
	RedisPasswordFile = "redis-password"

	VotePort   = 8080
	ResultPort = 8081
	WorkerPort = 8082

	// Vote stores (AppProps.Store); the services' STORE values.
	StorePostgres = "postgres"
	StoreDynamoDB = "dynamodb"

	// What an ALB target group in front of vote or result must use to agree
	// with the pods (Tier 4 makes its target groups in CloudFormation): the
	// health check path, and a deregistration delay no shorter than the
	// pods' preStop sleep.
	HealthCheckPath            = "/healthz"
	DeregistrationDelaySeconds = 30
)

// TargetGroupArns are the ARNs of the target groups (target type ip) the
// vote and result Services are bound to (CDK tokens are fine).
type TargetGroupArns struct {
	Vote, Result string
	// Revision, when set, suffixes the bindings' names (vote-<revision>).
	// The controller refuses to change a binding's target group, so a
	// replaced target group (a new ARN) must come with a new revision: the
	// binding is then replaced, not updated.
	Revision string
}

// ServiceImages are the image URIs of the three services (CDK tokens are fine).
type ServiceImages struct{ Vote, Worker, Result string }

// ServiceAccounts names the Kubernetes service accounts; empty names default
// to vote, worker, result and fluent-bit.
type ServiceAccounts struct{ Vote, Worker, Result, FluentBit string }

// Sizing is one service's replica bounds and per-pod resources. Zero fields
// take the service's default (see defaultSizing).
type Sizing struct {
	MinReplicas, MaxReplicas int32
	// Kubernetes quantities, e.g. "250m", "1", "128Mi".
	CPURequest, CPULimit, MemoryRequest, MemoryLimit string
	// TargetCPUPercent is the HPA's average CPU utilization target (of the request).
	TargetCPUPercent int32
}

// AppProps is everything Manifests needs.
type AppProps struct {
	// Namespace of the app (default "ladder"). It enforces the "restricted"
	// Pod Security Standard.
	Namespace string
	// LoggingNamespace holds Fluent Bit (default "ladder-logging"): it reads
	// host paths, which the restricted standard forbids.
	LoggingNamespace string

	Images          ServiceImages
	ServiceAccounts ServiceAccounts
	OptionA         string
	OptionB         string

	// RedisHost is the ElastiCache primary endpoint; RedisPort defaults to 6379.
	RedisHost string
	RedisPort int
	// RedisAuthSecretArn holds the AUTH token. When RedisAuthSecretJSONKey is
	// set the secret is JSON and the token is that key; otherwise the whole
	// secret string is the token.
	RedisAuthSecretArn     string
	RedisAuthSecretJSONKey string

	// Store selects the vote store: "" or StorePostgres (Aurora; needs
	// DatabaseSecretArn) or StoreDynamoDB (needs DynamoDBTable; no database
	// secret, so no SecretProviderClass entry for one). In DynamoDB mode the
	// worker and result pods call DynamoDB with their EKS Pod Identity role
	// (the AWS SDK's default credential chain).
	Store string
	// DynamoDBTable is the table name (a literal or a token); DynamoDB only.
	DynamoDBTable string
	// DefaultWriterRegion (DynamoDB only), when set, fences the workers:
	// only the region the table's writer flag names applies votes, and
	// while no flag is set, this one (the primary). Workers elsewhere stand
	// by, their votes waiting in their own queue. Empty: every worker
	// writes.
	DefaultWriterRegion string

	// DatabaseSecretArn is the Aurora (RDS-style JSON) secret: host, port,
	// username, password, dbname. The writer is taken from it. PostgreSQL
	// only, like ReaderHost, DatabasePort and DatabaseName.
	DatabaseSecretArn string
	// ReaderHost is the Aurora reader endpoint the result service reads from;
	// "" reads from the writer. DatabasePort defaults to 5432; DatabaseName ""
	// takes the secret's dbname.
	ReaderHost   string
	DatabasePort int
	DatabaseName string

	// VoteHost and ResultHost are the public host names (ExternalDNS makes
	// the records); both "" without a domain.
	VoteHost, ResultHost string
	// CertificateArn (ACM) turns on HTTPS with an HTTP->HTTPS redirect. It
	// requires the host names.
	CertificateArn string

	// TargetGroups, when set, bind the vote and result Services to target
	// groups made outside the cluster (the rung's own ALB, in
	// CloudFormation) with TargetGroupBinding objects instead of Ingresses.
	// The ALB, its listeners and certificate and its DNS records are then
	// CloudFormation's, so VoteHost, ResultHost and CertificateArn must be
	// empty.
	TargetGroups *TargetGroupArns

	// StaticBaseURL, when set, is where the vote and result pages link their
	// static assets (https://<CDN host>, a token is fine); "" serves them
	// from the pods under relative URLs.
	StaticBaseURL string

	Vote, Worker, Result Sizing

	// Region of the secrets and the OpenSearch domain.
	Region string
	// OpenSearchEndpoint is the domain's host name (no scheme); Fluent Bit
	// ships every pod's log there into daily indices LogIndexPrefix-YYYY.MM.DD.
	OpenSearchEndpoint string
	LogIndexPrefix     string
	// FluentBitImage defaults to DefaultFluentBitImage.
	FluentBitImage string
}

func defaultSizing(svc string) Sizing {
	switch svc {
	case "vote":
		return Sizing{MinReplicas: 2, MaxReplicas: 10, CPURequest: "250m", CPULimit: "1", MemoryRequest: "128Mi", MemoryLimit: "256Mi", TargetCPUPercent: 70}
	case "worker":
		return Sizing{MinReplicas: 2, MaxReplicas: 6, CPURequest: "250m", CPULimit: "1", MemoryRequest: "128Mi", MemoryLimit: "256Mi", TargetCPUPercent: 70}
	default: // result
		return Sizing{MinReplicas: 2, MaxReplicas: 6, CPURequest: "100m", CPULimit: "500m", MemoryRequest: "96Mi", MemoryLimit: "192Mi", TargetCPUPercent: 70}
	}
}

func (z Sizing) withDefaults(svc string) Sizing {
	d := defaultSizing(svc)
	if z.MinReplicas == 0 {
		z.MinReplicas = d.MinReplicas
	}
	if z.MaxReplicas == 0 {
		z.MaxReplicas = d.MaxReplicas
	}
	if z.CPURequest == "" {
		z.CPURequest = d.CPURequest
	}
	if z.CPULimit == "" {
		z.CPULimit = d.CPULimit
	}
	if z.MemoryRequest == "" {
		z.MemoryRequest = d.MemoryRequest
	}
	if z.MemoryLimit == "" {
		z.MemoryLimit = d.MemoryLimit
	}
	if z.TargetCPUPercent == 0 {
		z.TargetCPUPercent = d.TargetCPUPercent
	}
	return z
}

func q(s string) *resource.Quantity { v := resource.MustParse(s); return &v }

func (z Sizing) validate(svc string) error {
	if z.MinReplicas < 1 || z.MaxReplicas < z.MinReplicas {
		return fmt.Errorf("%s: replicas must satisfy 1 <= min (%d) <= max (%d)", svc, z.MinReplicas, z.MaxReplicas)
	}
	if z.TargetCPUPercent < 1 || z.TargetCPUPercent > 100 {
		return fmt.Errorf("%s: TargetCPUPercent must be in [1, 100], got %d", svc, z.TargetCPUPercent)
	}
	for _, q := range []struct{ name, v string }{{"CPURequest", z.CPURequest}, {"CPULimit", z.CPULimit}, {"MemoryRequest", z.MemoryRequest}, {"MemoryLimit", z.MemoryLimit}} {
		if _, err := resource.ParseQuantity(q.v); err != nil {
			return fmt.Errorf("%s: %s %q: %w", svc, q.name, q.v, err)
		}
	}
	if q(z.CPURequest).Cmp(*q(z.CPULimit)) > 0 || q(z.MemoryRequest).Cmp(*q(z.MemoryLimit)) > 0 {
		return fmt.Errorf("%s: requests must not exceed limits", svc)
	}
	return nil
}

// withDefaults fills every defaulted field.
func (p AppProps) withDefaults() AppProps {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&p.Namespace, DefaultNamespace)
	def(&p.LoggingNamespace, DefaultLoggingNamespace)
	def(&p.ServiceAccounts.Vote, "vote")
	def(&p.ServiceAccounts.Worker, "worker")
	def(&p.ServiceAccounts.Result, "result")
	def(&p.ServiceAccounts.FluentBit, "fluent-bit")
	def(&p.OptionA, "Cats")
	def(&p.OptionB, "Dogs")
	def(&p.FluentBitImage, DefaultFluentBitImage)
	def(&p.LogIndexPrefix, "ladder")
	def(&p.Store, StorePostgres)
	if p.RedisPort == 0 {
		p.RedisPort = 6379
	}
	if p.DatabasePort == 0 {
		p.DatabasePort = 5432
	}
	p.Vote = p.Vote.withDefaults("vote")
	p.Worker = p.Worker.withDefaults("worker")
	p.Result = p.Result.withDefaults("result")
	return p
}

// WithDefaults returns p with every defaulted field filled in, so callers
// (the CDK stack) can read the names the manifests will use.
func (p AppProps) WithDefaults() AppProps { return p.withDefaults() }

func (p AppProps) validate() error {
	var errs []error
	req := func(name, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	req("Images.Vote", p.Images.Vote)
	req("Images.Worker", p.Images.Worker)
	req("Images.Result", p.Images.Result)
	req("RedisHost", p.RedisHost)
	req("RedisAuthSecretArn", p.RedisAuthSecretArn)
	req("Region", p.Region)
	req("OpenSearchEndpoint", p.OpenSearchEndpoint)
	if strings.Contains(p.OpenSearchEndpoint, "://") {
		errs = append(errs, fmt.Errorf("OpenSearchEndpoint must be a host name without scheme, got %q", p.OpenSearchEndpoint))
	}
	if (p.VoteHost == "") != (p.ResultHost == "") {
		errs = append(errs, errors.New("VoteHost and ResultHost must be set together (or neither, without a domain)"))
	}
	if p.CertificateArn != "" && p.VoteHost == "" {
		errs = append(errs, errors.New("CertificateArn needs VoteHost and ResultHost: a certificate is for a host name"))
	}
	// A field the chosen store does not use is an error, not silently
	// ignored: it would mean the caller expects a database it will not get.
	switch p.Store {
	case StorePostgres:
		req("DatabaseSecretArn", p.DatabaseSecretArn)
		if p.DynamoDBTable != "" || p.DefaultWriterRegion != "" {
			errs = append(errs, errors.New(`DynamoDBTable and DefaultWriterRegion are for Store "dynamodb"; the postgres store does not use them`))
		}
	case StoreDynamoDB:
		req("DynamoDBTable", p.DynamoDBTable)
		for _, f := range []struct{ name, v string }{{"DatabaseSecretArn", p.DatabaseSecretArn}, {"ReaderHost", p.ReaderHost}, {"DatabaseName", p.DatabaseName}} {
			if f.v != "" {
				errs = append(errs, fmt.Errorf(`%s must be empty with Store "dynamodb": it configures the postgres store`, f.name))
			}
		}
	default:
		errs = append(errs, fmt.Errorf(`Store must be "", %q or %q, got %q`, StorePostgres, StoreDynamoDB, p.Store))
	}
	if p.TargetGroups != nil {
		req("TargetGroups.Vote", p.TargetGroups.Vote)
		req("TargetGroups.Result", p.TargetGroups.Result)
		if p.VoteHost != "" || p.ResultHost != "" || p.CertificateArn != "" {
			errs = append(errs, errors.New("VoteHost, ResultHost and CertificateArn must be empty with TargetGroups: the ALB, its certificate and its DNS records are then made outside the cluster"))
		}
	}
	if p.Namespace == p.LoggingNamespace {
		errs = append(errs, errors.New("LoggingNamespace must differ from Namespace: the app namespace enforces the restricted Pod Security Standard, which forbids Fluent Bit's host paths"))
	}
	for _, z := range []struct {
		svc string
		s   Sizing
	}{{"vote", p.Vote}, {"worker", p.Worker}, {"result", p.Result}} {
		if err := z.s.validate(z.svc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
