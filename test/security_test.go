package test

import (
	"fmt"
	"strings"
	"testing"
)

// allowedWildcardActions are the IAM actions that take no resource-level
// scope, so a "*" resource is the only possibility; any other wildcard needs
// a reason added here.
var allowedWildcardActions = map[string]string{}

// Least privilege, checked on every stack: no action wildcard at all, and a
// "*" resource only for actions AWS does not scope by resource.
func TestIAMHasNoWildcardActions(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		for _, stack := range set.names() {
			for _, st := range policyStatements(set, t, stack) {
				if st["Effect"] != "Allow" {
					continue
				}
				for _, a := range asList(st["Action"]) {
					if s, _ := a.(string); strings.Contains(s, "*") {
						if _, ok := allowedWildcardActions[s]; !ok {
							t.Errorf("%s: wildcard action %q in %v", stack, s, st)
						}
					}
				}
			}
		}
	}
}

// resourceScopeless lists actions IAM cannot scope to a resource.
var resourceScopeless = map[string]bool{
	"ecr:GetAuthorizationToken":  true,
	"ec2:DescribeVolumes":        true,
	"ec2:DescribeSecurityGroups": true,
	"logs:CreateLogDelivery":     true,
	"logs:DeleteLogDelivery":     true,
	// Tier 2 reads the id of CloudFront's origin-facing prefix list at deploy.
	"ec2:DescribeManagedPrefixLists": true,
}

func TestIAMStarResourceOnlyForUnscopableActions(t *testing.T) {
	for _, stack := range defaults.names() {
		for _, st := range policyStatements(defaults, t, stack) {
			if st["Effect"] != "Allow" {
				continue
			}
			star := false
			for _, r := range asList(st["Resource"]) {
				if r == "*" {
					star = true
				}
			}
			if !star {
				continue
			}
			for _, a := range asList(st["Action"]) {
				if !resourceScopeless[a.(string)] {
					t.Errorf("%s: %v is allowed on every resource", stack, a)
				}
			}
		}
	}
}

// userDataLimit is EC2's limit on raw user data (before the base64 the API
// adds). Exceeding it fails the deploy, not the synth.
const userDataLimit = 16384

// refBytes is what one reference in user data (an image URI, an ARN, an
// endpoint) can resolve to; generous, so the test errs on the safe side.
const refBytes = 160

func userDataSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []any:
		total := 0
		for _, e := range x {
			total += userDataSize(e)
		}
		return total
	case map[string]any:
		if j, ok := x["Fn::Join"].([]any); ok && len(j) == 2 {
			parts, _ := j[1].([]any)
			sep, _ := j[0].(string)
			total := 0
			for i, p := range parts {
				if i > 0 {
					total += len(sep)
				}
				total += userDataSize(p)
			}
			return total
		}
		if b64, ok := x["Fn::Base64"]; ok {
			return userDataSize(b64)
		}
		return refBytes
	default:
		return len(fmt.Sprint(x))
	}
}

// Every host's user data fits EC2's limit, counting each reference at more
// than its longest plausible length, so the deploy cannot be the first to
// find out. (Tier 1's box is the closest: its setup script is ~13 KB.)
func TestUserDataFitsEC2Limit(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		for _, stack := range set.names() {
			check := func(kind, id string, ud any) {
				if ud == nil {
					return
				}
				if size := userDataSize(ud); size > userDataLimit {
					t.Errorf("%s %s %s: user data up to %d bytes, over EC2's %d-byte limit", stack, kind, id, size, userDataLimit)
				}
			}
			for id, r := range set.resources(t, stack, "AWS::EC2::Instance") {
				check("instance", id, props(r)["UserData"])
			}
			for id, r := range set.resources(t, stack, "AWS::EC2::LaunchTemplate") {
				lt, _ := props(r)["LaunchTemplateData"].(map[string]any)
				check("launch template", id, lt["UserData"])
			}
		}
	}
}
