package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// check runs a jsii assertion, which panics on failure, as a test failure.
func check(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

func obj(m map[string]any) assertions.Matcher { return assertions.Match_ObjectLike(&m) }

func arr(items ...any) assertions.Matcher { return assertions.Match_ArrayWith(&items) }

func str(v string) *string { return jsii.String(v) }

// flatten renders an intrinsic-laden value (Fn::Join of strings and
// references) as one string, references shown as ${...JSON...}, so tests can
// search user data or a URL output as text.
func flatten(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var b strings.Builder
		for _, e := range x {
			b.WriteString(flatten(e))
		}
		return b.String()
	case map[string]any:
		if j, ok := x["Fn::Join"].([]any); ok && len(j) == 2 {
			parts, _ := j[1].([]any)
			sep, _ := j[0].(string)
			out := make([]string, len(parts))
			for i, p := range parts {
				out[i] = flatten(p)
			}
			return strings.Join(out, sep)
		}
		if b64, ok := x["Fn::Base64"]; ok {
			return flatten(b64)
		}
		raw, _ := json.Marshal(x)
		return "${" + string(raw) + "}"
	default:
		return fmt.Sprint(x)
	}
}

// policyStatements returns every statement of every IAM policy and role
// inline policy in the template.
func policyStatements(s *synthesized, t *testing.T, stack string) []map[string]any {
	t.Helper()
	var out []map[string]any
	add := func(doc any) {
		d, _ := doc.(map[string]any)
		sts, _ := d["Statement"].([]any)
		for _, st := range sts {
			out = append(out, st.(map[string]any))
		}
	}
	for _, r := range s.resources(t, stack, "AWS::IAM::Policy") {
		add(props(r)["PolicyDocument"])
	}
	for _, r := range s.resources(t, stack, "AWS::IAM::Role") {
		ps, _ := props(r)["Policies"].([]any)
		for _, p := range ps {
			add(p.(map[string]any)["PolicyDocument"])
		}
	}
	return out
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// fixture is a test app built and synthesized once per test binary, on first
// use: build gets a fresh app (cdk.json's flags, bundling skipped). A panic
// while building or synthesizing (an unsuppressed cdk-nag finding, a
// construct's own check) fails every test that uses the fixture, with the
// validation report's findings.
func fixture[T any](what string, build func(app awscdk.App) (T, error)) func(*testing.T) T {
	var (
		once sync.Once
		v    T
		err  error
	)
	return func(t *testing.T) T {
		t.Helper()
		once.Do(func() {
			app := newApp(nil)
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%s test app synth failed: %v\n%s", what, r, errorAnnotations(*app.Outdir()))
				}
			}()
			v, err = build(app)
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
