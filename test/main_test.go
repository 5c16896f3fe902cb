// Package test is the specification of every rung, checked against the
// templates the app really synthesizes. The app is synthesized once per test
// binary (TestMain) in two configurations, the defaults and a "full" one
// with every optional setting, and every test reads from those.
package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/ladder-cdk/ladder/app/ladder"
)

// synthesized is one app run: its stacks and their templates.
type synthesized struct {
	stacks    map[string]awscdk.Stack
	templates map[string]map[string]any
}

var (
	// defaults is the app with no context at all, as `make synth` runs it.
	defaults *synthesized
	// full sets every optional key: a domain, an account, an alarm address.
	full *synthesized
	// outdirs are the cloud assemblies written by the tests, removed at exit.
	outdirs []string
)

// fullContext is what a user deploying for real typically sets.
var fullContext = map[string]any{
	"domainName":   "vote.example.com",
	"hostedZoneId": "Z0123456789ABCDEFGHIJ",
	"account":      "123456789012",
	"alarmEmail":   "ops@example.com",
	"allowedCidr":  "203.0.113.0/24",
	// The recovery region runs the app too, so both Tier 4 modes are
	// synthesized (pilot light with the defaults).
	"tier4DrMode": "warm",
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// newApp is an App with the given user context. Asset bundling is skipped
// (the CLI refuses `aws:` keys from -c, so it is set in code); the tests in
// assets_test.go and lambda_test.go bundle for real.
func newApp(userContext map[string]any) awscdk.App {
	ctx := map[string]any{"aws:cdk:bundling-stacks": []any{}}
	for k, v := range cdkJSONContext() {
		ctx[k] = v
	}
	for k, v := range userContext {
		ctx[k] = v
	}
	outdir, err := os.MkdirTemp("", "ladder-test-cdkout-")
	if err != nil {
		panic(err)
	}
	outdirs = append(outdirs, outdir)
	return awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(outdir)})
}

// cdkJSONContext is cdk.json's context (the feature flags), which the CLI
// would pass to the app; tests must synthesize under the same flags.
func cdkJSONContext() map[string]any {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "cdk.json"))
	if err != nil {
		panic(err)
	}
	var c struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return c.Context
}

func synth(userContext map[string]any) (out *synthesized, err error) {
	app := newApp(userContext)
	// With the validation-report feature flags, an error annotation (a
	// cdk-nag finding) makes Synth throw; report it as an error with the
	// findings rather than a jsii panic.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("synth failed: %v\n%s", r, errorAnnotations(*app.Outdir()))
		}
	}()
	l, _, err := ladder.New(app, repoRoot())
	if err != nil {
		return nil, err
	}
	asm := app.Synth(nil)
	out = &synthesized{stacks: l.Stacks, templates: map[string]map[string]any{}}
	for name := range l.Stacks {
		tpl, ok := asm.GetStackByName(jsii.String(name)).Template().(map[string]any)
		if !ok {
			return nil, fmt.Errorf("stack %s: template is not a JSON object", name)
		}
		out.templates[name] = tpl
	}
	return out, nil
}

func TestMain(m *testing.M) {
	code := func() int {
		defer jsii.Close()
		defer func() {
			for _, d := range outdirs {
				os.RemoveAll(d)
			}
		}()
		var err error
		if defaults, err = synth(nil); err != nil {
			fmt.Fprintf(os.Stderr, "synth with defaults: %v\n", err)
			return 1
		}
		if full, err = synth(fullContext); err != nil {
			fmt.Fprintf(os.Stderr, "synth with full context: %v\n", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// template wraps a synthesized template for assertions.
func (s *synthesized) template(t *testing.T, stack string) assertions.Template {
	t.Helper()
	tpl, ok := s.templates[stack]
	if !ok {
		t.Fatalf("stack %s was not synthesized; have %v", stack, s.names())
	}
	return assertions.Template_FromJSON(&tpl, nil)
}

func (s *synthesized) names() []string {
	out := make([]string, 0, len(s.templates))
	for n := range s.templates {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// resources returns the template's resources of one type, by logical id.
func (s *synthesized) resources(t *testing.T, stack, typ string) map[string]map[string]any {
	t.Helper()
	res, _ := s.templates[stack]["Resources"].(map[string]any)
	out := map[string]map[string]any{}
	for id, r := range res {
		m := r.(map[string]any)
		if m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

// only returns the single resource of typ, failing if there is not exactly one.
func (s *synthesized) only(t *testing.T, stack, typ string) (string, map[string]any) {
	t.Helper()
	rs := s.resources(t, stack, typ)
	if len(rs) != 1 {
		t.Fatalf("%s: want exactly one %s, have %d", stack, typ, len(rs))
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// Stack names are part of the interface: users deploy them by name.
const (
	tier1 = "Ladder-Tier1"
	tier2 = "Ladder-Tier2"
	// Tier 2's us-east-1 stacks: the web ACL and certificate CloudFront
	// uses (deployed before tier2), and the CloudFront alarms (after it).
	tier2Edge       = "Ladder-Tier2-Edge"
	tier2EdgeAlarms = "Ladder-Tier2-EdgeAlarms"
)

// errorAnnotations lists the error findings of the validation report that
// a failed synth leaves in outdir.
func errorAnnotations(outdir string) string {
	b, err := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
	if err != nil {
		return "(no validation report)"
	}
	var rep struct {
		PluginReports []struct {
			Violations []struct {
				Description         string `json:"description"`
				ViolatingConstructs []struct {
					ConstructPath string `json:"constructPath"`
				} `json:"violatingConstructs"`
			} `json:"violations"`
		} `json:"pluginReports"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return string(b)
	}
	var lines []string
	for _, p := range rep.PluginReports {
		for _, v := range p.Violations {
			rule, _, _ := strings.Cut(v.Description, ":")
			for _, c := range v.ViolatingConstructs {
				lines = append(lines, fmt.Sprintf("  %s at %s", rule, c.ConstructPath))
			}
		}
	}
	return strings.Join(lines, "\n")
}
