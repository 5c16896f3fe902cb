package main

// The handler against an HTTPS test server standing in for the domain's
// REST API. The server checks every request's SigV4 signature the way the
// service does (recomputing it from the signed headers and the body with the
// test's secret key), records method, path, query and body, and answers
// the ISM policy GET from its own state, so the tests read as the exact
// conversation the handler has with OpenSearch.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testRegion = "us-west-2"
	masterArn  = "arn:aws:iam::123456789012:role/LadderLogsLifecycleRole"
	writerArn  = "arn:aws:iam::123456789012:role/FluentBit"
	adminArn   = "arn:aws:iam::123456789012:role/log-reader"
)

var testCreds = aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret-for-tests", SessionToken: "session-token"}

type request struct {
	Method, Path string
	Query        url.Values
	Body         map[string]any
}

// fakeDomain is the test server's state.
type fakeDomain struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	requests []request
	// policy is the stored ISM policy document (nil: none), with its
	// sequence number and primary term.
	policy      map[string]any
	seqNo, term int64
	// fail answers the n-th request (1-based) with a status instead.
	fail map[int]int
}

func newFakeDomain(t *testing.T) *fakeDomain {
	f := &fakeDomain{t: t, fail: map[int]int{}, term: 1}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDomain) endpoint() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeDomain) handler() *Handler {
	return &Handler{
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return testCreds, nil }),
		Region:      testRegion,
		HTTP:        f.srv.Client(),
		RetryFor:    2 * time.Second,
		RetryEvery:  10 * time.Millisecond,
	}
}

// verifySignature recomputes the request's signature from the headers it
// says it signed and the body it carries.
func verifySignature(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	wantPrefix := "AWS4-HMAC-SHA256 Credential=" + testCreds.AccessKeyID + "/"
	if !strings.HasPrefix(auth, wantPrefix) || !strings.Contains(auth, "/"+testRegion+"/es/aws4_request") {
		return "Authorization is not a SigV4 signature for es in " + testRegion + ": " + auth
	}
	if r.Header.Get("X-Amz-Security-Token") != testCreds.SessionToken {
		return "no session token"
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if r.Header.Get("X-Amz-Content-Sha256") != hash {
		return "X-Amz-Content-Sha256 is not the body's hash"
	}
	_, signed, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		return "no SignedHeaders"
	}
	signed, _, _ = strings.Cut(signed, ",")
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "bad X-Amz-Date"
	}
	again, _ := http.NewRequest(r.Method, "https://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(signed, ";") {
		if h == "host" || h == "content-length" {
			continue
		}
		again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	again.Header.Del("X-Amz-Date")
	if err := v4.NewSigner().SignHTTP(context.Background(), testCreds, again, hash, "es", testRegion, when); err != nil {
		return err.Error()
	}
	if again.Header.Get("Authorization") != auth {
		return "signature mismatch"
	}
	return ""
}

func (f *fakeDomain) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &rec.Body); err != nil {
			f.t.Errorf("%s %s: body is not JSON: %s", r.Method, r.URL, body)
		}
		if r.Header.Get("Content-Type") != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
	}
	f.requests = append(f.requests, rec)
	if problem := verifySignature(r, body); problem != "" {
		f.t.Errorf("%s %s: %s", r.Method, r.URL, problem)
		http.Error(w, `{"message":"The request signature we calculated does not match"}`, http.StatusForbidden)
		return
	}
	if status, ok := f.fail[len(f.requests)]; ok {
		http.Error(w, `{"error":"injected"}`, status)
		return
	}
	policyPath := "/_plugins/_ism/policies/ladder-logs-retention"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == policyPath:
		if f.policy == nil {
			http.Error(w, `{"error":{"type":"status_exception","reason":"Policy not found"},"status":404}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"_id": "ladder-logs-retention", "_version": 2, "_seq_no": f.seqNo, "_primary_term": f.term, "policy": f.policy,
		})
	case r.Method == http.MethodPut && r.URL.Path == policyPath:
		exists := f.policy != nil
		if exists && (rec.Query.Get("if_seq_no") == "" || rec.Query.Get("if_primary_term") == "") {
			http.Error(w, `{"error":"version_conflict_engine_exception"}`, http.StatusConflict)
			return
		}
		f.policy, _ = rec.Body["policy"].(map[string]any)
		f.seqNo++
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"_id":"ladder-logs-retention"}`))
	default:
		_, _ = w.Write([]byte(`{"status":"OK"}`))
	}
}

func (f *fakeDomain) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.requests))
	for i, r := range f.requests {
		out[i] = r.Method + " " + r.Path
		if len(r.Query) > 0 {
			out[i] += "?" + r.Query.Encode()
		}
	}
	return out
}

func (f *fakeDomain) body(t *testing.T, call string) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.requests) - 1; i >= 0; i-- {
		if r := f.requests[i]; r.Method+" "+r.Path == call {
			return r.Body
		}
	}
	t.Fatalf("no request %s", call)
	return nil
}

func event(f *fakeDomain, typ cfn.RequestType, retentionDays string) cfn.Event {
	return cfn.Event{
		RequestType:        typ,
		LogicalResourceID:  "LogsLifecycleConfig",
		PhysicalResourceID: "ladder-logs-retention@" + f.endpoint(),
		ResourceProperties: map[string]any{
			"ServiceToken":     "arn:aws:lambda:us-west-2:123456789012:function:provider",
			PropEndpoint:       f.endpoint(),
			PropPolicyName:     "ladder-logs-retention",
			PropIndexPrefix:    "ladder-logs",
			PropRetentionDays:  retentionDays,
			PropIndexReplicas:  "1",
			PropMasterRoleArn:  masterArn,
			PropWriterRoleArns: []any{writerArn},
			PropAdminRoleArns:  []any{adminArn},
		},
	}
}

// asJSON round-trips a value so typed bodies compare with decoded ones.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func expectJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	if g := asJSON(t, got); !reflect.DeepEqual(g, w) {
		gj, _ := json.Marshal(g)
		t.Errorf("%s:\n got %s\nwant %s", what, gj, want)
	}
}

func TestCreateMapsRolesAppliesRetentionAndTemplate(t *testing.T) {
	f := newFakeDomain(t)
	resp, err := f.handler().Handle(context.Background(), event(f, cfn.RequestCreate, "9"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PUT /_plugins/_security/api/roles/ladder-logs-writer",
		"PUT /_plugins/_security/api/rolesmapping/ladder-logs-writer",
		"PUT /_plugins/_security/api/rolesmapping/all_access",
		"GET /_plugins/_ism/policies/ladder-logs-retention",
		"PUT /_plugins/_ism/policies/ladder-logs-retention",
		"PUT /_index_template/ladder-logs",
	}
	if got := f.calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("requests:\n got %q\nwant %q", got, want)
	}
	expectJSON(t, "writer role", f.body(t, want[0]), `{
		"cluster_permissions": ["cluster_monitor", "indices:data/write/bulk"],
		"index_permissions": [{"index_patterns": ["ladder-logs-*"],
			"allowed_actions": ["create_index", "indices:data/write/index", "indices:data/write/bulk*", "indices:admin/mapping/put"]}]}`)
	expectJSON(t, "writer mapping", f.body(t, want[1]), `{"backend_roles": ["`+writerArn+`"]}`)
	expectJSON(t, "all_access mapping", f.body(t, want[2]), `{"backend_roles": ["`+masterArn+`", "`+adminArn+`"]}`)
	expectJSON(t, "ISM policy", f.body(t, want[4]), `{"policy": {
		"description": "Deletes ladder-logs-* indices 9 days after they were created",
		"default_state": "hot",
		"states": [
			{"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "9d"}}]},
			{"name": "delete", "actions": [{"delete": {}}], "transitions": []}
		],
		"ism_template": [{"index_patterns": ["ladder-logs-*"], "priority": 100}]}}`)
	expectJSON(t, "index template", f.body(t, want[5]), `{
		"index_patterns": ["ladder-logs-*"], "priority": 100,
		"template": {"settings": {"number_of_shards": 1, "number_of_replicas": 1},
			"mappings": {"properties": {"@timestamp": {"type": "date"}}}}}`)
	if resp.PhysicalResourceID != "ladder-logs-retention@"+f.endpoint() {
		t.Errorf("PhysicalResourceId %q", resp.PhysicalResourceID)
	}
	if resp.Data["IndexPattern"] != "ladder-logs-*" || resp.Data["WriterRole"] != "ladder-logs-writer" {
		t.Errorf("Data %v", resp.Data)
	}
}

// An update with another retention replaces the policy conditionally on
// the version read, then moves the existing indices to it.
func TestUpdateReplacesAChangedPolicyOnTheVersionRead(t *testing.T) {
	f := newFakeDomain(t)
	h := f.handler()
	if _, err := h.Handle(context.Background(), event(f, cfn.RequestCreate, "14")); err != nil {
		t.Fatal(err)
	}
	f.seqNo, f.term = 41, 3
	before := len(f.calls())
	if _, err := h.Handle(context.Background(), event(f, cfn.RequestUpdate, "30")); err != nil {
		t.Fatal(err)
	}
	got := f.calls()[before:]
	want := []string{
		"PUT /_plugins/_security/api/roles/ladder-logs-writer",
		"PUT /_plugins/_security/api/rolesmapping/ladder-logs-writer",
		"PUT /_plugins/_security/api/rolesmapping/all_access",
		"GET /_plugins/_ism/policies/ladder-logs-retention",
		"PUT /_plugins/_ism/policies/ladder-logs-retention?if_primary_term=3&if_seq_no=41",
		"POST /_plugins/_ism/change_policy/ladder-logs-*",
		"PUT /_index_template/ladder-logs",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("requests:\n got %q\nwant %q", got, want)
	}
	expectJSON(t, "change_policy", f.body(t, "POST /_plugins/_ism/change_policy/ladder-logs-*"), `{"policy_id": "ladder-logs-retention"}`)
	hot := f.policy["states"].([]any)[0].(map[string]any)
	if cond := hot["transitions"].([]any)[0].(map[string]any)["conditions"]; !reflect.DeepEqual(cond, map[string]any{"min_index_age": "30d"}) {
		t.Errorf("stored policy's hot transition %v; want min_index_age 30d", cond)
	}
}

// A policy already as wanted (as OpenSearch returns it, with the fields
// it adds) is left alone: no new version, no change_policy.
func TestUpdateLeavesAnEqualPolicyAlone(t *testing.T) {
	f := newFakeDomain(t)
	var stored map[string]any
	raw, _ := json.Marshal(policyBody(props{IndexPrefix: "ladder-logs", RetentionDays: 9}))
	_ = json.Unmarshal(raw, &stored)
	stored["policy_id"] = "ladder-logs-retention"
	stored["last_updated_time"] = 1764000000000
	stored["schema_version"] = 21
	stored["error_notification"] = nil
	stored["ism_template"].([]any)[0].(map[string]any)["last_updated_time"] = 1764000000000
	f.policy, f.seqNo = stored, 5
	if _, err := f.handler().Handle(context.Background(), event(f, cfn.RequestUpdate, "9")); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.calls() {
		if strings.HasPrefix(c, "PUT /_plugins/_ism/") || strings.Contains(c, "change_policy") {
			t.Errorf("unexpected %s for an unchanged policy", c)
		}
	}
}

func TestDeleteLeavesTheDomainAlone(t *testing.T) {
	f := newFakeDomain(t)
	ev := event(f, cfn.RequestDelete, "9")
	resp, err := f.handler().Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.calls()) != 0 {
		t.Errorf("delete sent %q", f.calls())
	}
	if resp.PhysicalResourceID != ev.PhysicalResourceID {
		t.Errorf("PhysicalResourceId %q; want it unchanged", resp.PhysicalResourceID)
	}
}

func TestAnErrorAnswerIsTheFailureReason(t *testing.T) {
	f := newFakeDomain(t)
	f.fail[2] = http.StatusForbidden
	_, err := f.handler().Handle(context.Background(), event(f, cfn.RequestCreate, "9"))
	if err == nil || !strings.Contains(err.Error(), "writer role mapping") || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("error %v; want the step, the status and the answer", err)
	}
	if n := len(f.calls()); n != 2 {
		t.Errorf("%d requests; want to stop at the failed one", n)
	}
}

func TestPassingFailuresAreRetried(t *testing.T) {
	f := newFakeDomain(t)
	f.fail[1] = http.StatusServiceUnavailable
	f.fail[2] = http.StatusTooManyRequests
	if _, err := f.handler().Handle(context.Background(), event(f, cfn.RequestCreate, "9")); err != nil {
		t.Fatal(err)
	}
	calls := f.calls()
	if len(calls) != 8 || calls[0] != calls[1] || calls[1] != calls[2] {
		t.Errorf("requests %q; want the first one tried three times, then the rest", calls)
	}
}

func TestInvalidPropertiesFailBeforeAnyRequest(t *testing.T) {
	cases := map[string]func(map[string]any){
		"no retention":     func(p map[string]any) { delete(p, PropRetentionDays) },
		"zero retention":   func(p map[string]any) { p[PropRetentionDays] = "0" },
		"uppercase prefix": func(p map[string]any) { p[PropIndexPrefix] = "Ladder" },
		"writer not a role": func(p map[string]any) {
			p[PropWriterRoleArns] = []any{"arn:aws:iam::123456789012:user/someone"}
		},
		"master missing": func(p map[string]any) { delete(p, PropMasterRoleArn) },
		"endpoint a URL": func(p map[string]any) { p[PropEndpoint] = "https://x.example.com/" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeDomain(t)
			ev := event(f, cfn.RequestCreate, "9")
			mutate(ev.ResourceProperties)
			if _, err := f.handler().Handle(context.Background(), ev); err == nil {
				t.Error("no error")
			}
			if n := len(f.calls()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}
