package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Resource property names, set by stacks/logsearch.go.
const (
	PropEndpoint       = "Endpoint"
	PropPolicyName     = "PolicyName"
	PropIndexPrefix    = "IndexPrefix"
	PropRetentionDays  = "RetentionDays"
	PropIndexReplicas  = "IndexReplicas"
	PropMasterRoleArn  = "MasterRoleArn"
	PropWriterRoleArns = "WriterRoleArns"
	PropAdminRoleArns  = "AdminRoleArns"
)

// Response is what the Provider framework expects back from onEvent.
type Response struct {
	PhysicalResourceID string            `json:"PhysicalResourceId"`
	Data               map[string]string `json:"Data,omitempty"`
}

// Handler handles the custom resource's events.
type Handler struct {
	// Credentials sign every request (the function's role).
	Credentials aws.CredentialsProvider
	Region      string
	HTTP        *http.Client
	Log         *slog.Logger
	// Now is the signing time; nil means time.Now.
	Now func() time.Time
	// RetryFor bounds how long a request that failed for a passing reason
	// (no connection yet, 429, 502-504) is retried; 0 means until 30 s
	// before the Lambda deadline (or 2 minutes without one).
	RetryFor time.Duration
	// RetryEvery is the pause between tries; 0 means 5 s.
	RetryEvery time.Duration
}

// props are the resource's properties, validated.
type props struct {
	Endpoint       string
	PolicyName     string
	IndexPrefix    string
	RetentionDays  int
	IndexReplicas  int
	MasterRoleArn  string
	WriterRoleArns []string
	AdminRoleArns  []string
}

var (
	// OpenSearch index names: lowercase, no spaces or the reserved characters.
	prefixPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,60}$`)
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	// An IAM role ARN (any partition, path allowed).
	roleArnPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	hostPattern    = regexp.MustCompile(`^[A-Za-z0-9.-]+(:\d+)?$`)
)

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
	list := func(k string) ([]string, error) {
		var out []string
		switch v := m[k].(type) {
		case nil:
			return nil, nil
		case []any:
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("property %s: want a list of strings, got an element of type %T", k, e)
				}
				if !roleArnPattern.MatchString(s) {
					return nil, fmt.Errorf("property %s: %q is not an IAM role ARN", k, s)
				}
				out = append(out, s)
			}
			return out, nil
		default:
			return nil, fmt.Errorf("property %s: want a list of strings, got %T", k, v)
		}
	}
	integer := func(k string, min, def int) (int, error) {
		v, err := str(k)
		if err != nil || v == "" {
			return def, err
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < min {
			return 0, fmt.Errorf("property %s: want an integer of at least %d, got %q", k, min, v)
		}
		return i, nil
	}
	var err error
	if p.Endpoint, err = str(PropEndpoint); err != nil {
		return p, err
	}
	if !hostPattern.MatchString(p.Endpoint) {
		return p, fmt.Errorf("property %s: want the domain's host name, got %q", PropEndpoint, p.Endpoint)
	}
	if p.PolicyName, err = str(PropPolicyName); err != nil {
		return p, err
	}
	if !namePattern.MatchString(p.PolicyName) {
		return p, fmt.Errorf("property %s: want letters, digits, - or _, got %q", PropPolicyName, p.PolicyName)
	}
	if p.IndexPrefix, err = str(PropIndexPrefix); err != nil {
		return p, err
	}
	if !prefixPattern.MatchString(p.IndexPrefix) {
		return p, fmt.Errorf("property %s: want a lowercase index name prefix, got %q", PropIndexPrefix, p.IndexPrefix)
	}
	if p.RetentionDays, err = integer(PropRetentionDays, 1, 0); err != nil {
		return p, err
	}
	if p.RetentionDays == 0 {
		return p, fmt.Errorf("property %s: required", PropRetentionDays)
	}
	if p.IndexReplicas, err = integer(PropIndexReplicas, 0, 1); err != nil {
		return p, err
	}
	if p.MasterRoleArn, err = str(PropMasterRoleArn); err != nil {
		return p, err
	}
	if !roleArnPattern.MatchString(p.MasterRoleArn) {
		return p, fmt.Errorf("property %s: %q is not an IAM role ARN", PropMasterRoleArn, p.MasterRoleArn)
	}
	if p.WriterRoleArns, err = list(PropWriterRoleArns); err != nil {
		return p, err
	}
	if p.AdminRoleArns, err = list(PropAdminRoleArns); err != nil {
		return p, err
	}
	return p, nil
}

// Handle is the Provider framework's onEvent.
func (h *Handler) Handle(ctx context.Context, ev cfn.Event) (Response, error) {
	log := h.logger().With("requestType", string(ev.RequestType), "logicalResourceId", ev.LogicalResourceID)
	switch ev.RequestType {
	case cfn.RequestDelete:
		log.Info("delete: the domain and its policies are left as they are")
		return Response{PhysicalResourceID: ev.PhysicalResourceID}, nil
	case cfn.RequestCreate, cfn.RequestUpdate:
	default:
		return Response{}, fmt.Errorf("unknown request type %q", ev.RequestType)
	}
	p, err := parseProps(ev.ResourceProperties)
	if err != nil {
		return Response{}, err
	}
	c := &client{h: h, base: "https://" + p.Endpoint, log: log}
	if err := c.configure(ctx, p); err != nil {
		return Response{}, err
	}
	return Response{
		PhysicalResourceID: p.PolicyName + "@" + p.Endpoint,
		Data: map[string]string{
			"PolicyName":   p.PolicyName,
			"IndexPattern": p.IndexPrefix + "-*",
			"WriterRole":   writerRole(p),
		},
	}, nil
}

func writerRole(p props) string { return p.IndexPrefix + "-writer" }

// The request bodies, as typed values.

type securityRole struct {
	ClusterPermissions []string          `json:"cluster_permissions"`
	IndexPermissions   []indexPermission `json:"index_permissions"`
}

type indexPermission struct {
	IndexPatterns  []string `json:"index_patterns"`
	AllowedActions []string `json:"allowed_actions"`
}

type roleMapping struct {
	BackendRoles []string `json:"backend_roles"`
}

type ismPolicy struct {
	Description  string        `json:"description"`
	DefaultState string        `json:"default_state"`
	States       []ismState    `json:"states"`
	ISMTemplate  []ismTemplate `json:"ism_template"`
}

type ismState struct {
	Name        string          `json:"name"`
	Actions     []ismAction     `json:"actions"`
	Transitions []ismTransition `json:"transitions"`
}

type ismAction struct {
	Delete *struct{} `json:"delete,omitempty"`
}

type ismTransition struct {
	StateName  string            `json:"state_name"`
	Conditions map[string]string `json:"conditions,omitempty"`
}

type ismTemplate struct {
	IndexPatterns []string `json:"index_patterns"`
	Priority      int      `json:"priority"`
}

type indexTemplate struct {
	IndexPatterns []string          `json:"index_patterns"`
	Priority      int               `json:"priority"`
	Template      indexTemplateBody `json:"template"`
}

type indexTemplateBody struct {
	Settings map[string]any `json:"settings"`
	Mappings map[string]any `json:"mappings"`
}

// writerRoleBody may create <prefix>-* indices and write to them (Fluent
// Bit's _bulk requests), and read the cluster's health; nothing else.
func writerRoleBody(p props) securityRole {
	return securityRole{
		ClusterPermissions: []string{"cluster_monitor", "indices:data/write/bulk"},
		IndexPermissions: []indexPermission{{
			IndexPatterns:  []string{p.IndexPrefix + "-*"},
			AllowedActions: []string{"create_index", "indices:data/write/index", "indices:data/write/bulk*", "indices:admin/mapping/put"},
		}},
	}
}

func policyBody(p props) ismPolicy {
	return ismPolicy{
		Description:  fmt.Sprintf("Deletes %s-* indices %d days after they were created", p.IndexPrefix, p.RetentionDays),
		DefaultState: "hot",
		States: []ismState{
			{Name: "hot", Actions: []ismAction{}, Transitions: []ismTransition{{
				StateName:  "delete",
				Conditions: map[string]string{"min_index_age": fmt.Sprintf("%dd", p.RetentionDays)},
			}}},
			{Name: "delete", Actions: []ismAction{{Delete: &struct{}{}}}, Transitions: []ismTransition{}},
		},
		ISMTemplate: []ismTemplate{{IndexPatterns: []string{p.IndexPrefix + "-*"}, Priority: 100}},
	}
}

func indexTemplateFor(p props) indexTemplate {
	return indexTemplate{
		IndexPatterns: []string{p.IndexPrefix + "-*"},
		Priority:      100,
		Template: indexTemplateBody{
			// One shard per daily index is plenty for the ladder's log volume;
			// a replica puts a copy in the other AZ.
			Settings: map[string]any{"number_of_shards": 1, "number_of_replicas": p.IndexReplicas},
			Mappings: map[string]any{"properties": map[string]any{"@timestamp": map[string]any{"type": "date"}}},
		},
	}
}

// client is one event's signed conversation with the domain.
type client struct {
	h    *Handler
	base string
	log  *slog.Logger
}

func (c *client) configure(ctx context.Context, p props) error {
	role := writerRole(p)
	if err := c.put(ctx, "/_plugins/_security/api/roles/"+role, writerRoleBody(p)); err != nil {
		return fmt.Errorf("writer role: %w", err)
	}
	writers := p.WriterRoleArns
	if writers == nil {
		writers = []string{}
	}
	if err := c.put(ctx, "/_plugins/_security/api/rolesmapping/"+role, roleMapping{BackendRoles: writers}); err != nil {
		return fmt.Errorf("writer role mapping: %w", err)
	}
	// The master role stays in all_access: leaving it out would lock this
	// function (and so the next deploy) out of the security API.
	admins := append([]string{p.MasterRoleArn}, p.AdminRoleArns...)
	if err := c.put(ctx, "/_plugins/_security/api/rolesmapping/all_access", roleMapping{BackendRoles: admins}); err != nil {
		return fmt.Errorf("all_access role mapping: %w", err)
	}
	if err := c.applyPolicy(ctx, p); err != nil {
		return fmt.Errorf("ISM policy %s: %w", p.PolicyName, err)
	}
	if err := c.put(ctx, "/_index_template/"+p.IndexPrefix, indexTemplateFor(p)); err != nil {
		return fmt.Errorf("index template: %w", err)
	}
	c.log.Info("configured", "policy", p.PolicyName, "retentionDays", p.RetentionDays, "indexPattern", p.IndexPrefix+"-*", "writers", len(p.WriterRoleArns), "admins", len(p.AdminRoleArns))
	return nil
}

// applyPolicy creates the ISM policy, or replaces it when it differs (with
// the sequence number read, so a concurrent change fails instead of being
// overwritten) and moves the existing indices onto the new version.
func (c *client) applyPolicy(ctx context.Context, p props) error {
	path := "/_plugins/_ism/policies/" + p.PolicyName
	want := policyBody(p)
	status, body, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusNotFound:
		return c.put(ctx, path, map[string]any{"policy": want})
	case http.StatusOK:
	default:
		return statusError(http.MethodGet, path, status, body)
	}
	var existing struct {
		SeqNo       *int64    `json:"_seq_no"`
		PrimaryTerm *int64    `json:"_primary_term"`
		Policy      ismPolicy `json:"policy"`
	}
	if err := json.Unmarshal(body, &existing); err != nil {
		return fmt.Errorf("GET %s: unreadable answer: %v", path, err)
	}
	if existing.SeqNo == nil || existing.PrimaryTerm == nil {
		return fmt.Errorf("GET %s: the answer has no _seq_no/_primary_term", path)
	}
	if samePolicy(existing.Policy, want) {
		c.log.Info("ISM policy unchanged", "policy", p.PolicyName)
		return nil
	}
	q := url.Values{}
	q.Set("if_seq_no", strconv.FormatInt(*existing.SeqNo, 10))
	q.Set("if_primary_term", strconv.FormatInt(*existing.PrimaryTerm, 10))
	if err := c.put(ctx, path+"?"+q.Encode(), map[string]any{"policy": want}); err != nil {
		return err
	}
	// Indices keep the policy version they started with; change_policy
	// moves the existing ones to the new retention (ISM switches once the
	// index's current state allows, which "hot" always does).
	status, body, err = c.do(ctx, http.MethodPost, "/_plugins/_ism/change_policy/"+p.IndexPrefix+"-*", map[string]any{"policy_id": p.PolicyName})
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return statusError(http.MethodPost, "change_policy", status, body)
	}
	return nil
}

// samePolicy compares what this handler sets, ignoring what OpenSearch adds
// (policy_id, versions, timestamps, error_notification).
func samePolicy(a, b ismPolicy) bool {
	norm := func(p ismPolicy) ismPolicy {
		raw, _ := json.Marshal(p)
		var out ismPolicy
		_ = json.Unmarshal(raw, &out)
		for i := range out.States {
			if out.States[i].Actions == nil {
				out.States[i].Actions = []ismAction{}
			}
			if out.States[i].Transitions == nil {
				out.States[i].Transitions = []ismTransition{}
			}
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func (c *client) put(ctx context.Context, path string, body any) error {
	status, answer, err := c.do(ctx, http.MethodPut, path, body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return statusError(http.MethodPut, path, status, answer)
	}
	return nil
}

func statusError(method, path string, status int, body []byte) error {
	const max = 1024
	if len(body) > max {
		body = body[:max]
	}
	return fmt.Errorf("%s %s: HTTP %d: %s", method, path, status, bytes.TrimSpace(body))
}

// transient reports whether a status is worth retrying.
func transient(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusBadGateway ||
		status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// do sends one signed request, retrying passing failures, and returns the
// final status and body.
func (c *client) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, nil, err
		}
	}
	retryFor := c.h.RetryFor
	if retryFor == 0 {
		retryFor = 2 * time.Minute
		if dl, ok := ctx.Deadline(); ok {
			retryFor = time.Until(dl) - 30*time.Second
		}
	}
	every := c.h.RetryEvery
	if every == 0 {
		every = 5 * time.Second
	}
	until := time.Now().Add(retryFor)
	for attempt := 1; ; attempt++ {
		status, answer, err := c.once(ctx, method, path, payload)
		if err == nil && !transient(status) {
			return status, answer, nil
		}
		reason := ""
		if err != nil {
			reason = err.Error()
		} else {
			reason = fmt.Sprintf("HTTP %d", status)
		}
		if time.Now().Add(every).After(until) {
			if err != nil {
				return 0, nil, fmt.Errorf("%s %s: %w (gave up after %d tries)", method, path, err, attempt)
			}
			return status, answer, nil
		}
		c.log.Warn("retrying", "method", method, "path", path, "attempt", attempt, "reason", reason)
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(every):
		}
	}
}

func (c *client) once(ctx context.Context, method, path string, payload []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(payload)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds, err := c.h.Credentials.Retrieve(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("credentials: %w", err)
	}
	now := time.Now
	if c.h.Now != nil {
		now = c.h.Now
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "es", c.h.Region, now()); err != nil {
		return 0, nil, fmt.Errorf("signing: %w", err)
	}
	resp, err := c.h.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, answer, nil
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}
