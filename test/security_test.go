package test

import (
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
