package test

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
)

// Every stack passes cdk-nag's AWS Solutions pack: each accepted finding is
// suppressed in code next to its resource with a reason. The app itself
// exits 0 on findings (only the CLI fails), so the tests read annotations.
func TestCdkNagAwsSolutionsHasNoUnsuppressedFindings(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		for name, st := range set.stacks {
			ann := assertions.Annotations_FromStack(st)
			for _, level := range []struct {
				name  string
				found func() []any
			}{
				{"error", func() []any {
					return msgs(ann.FindError(str("*"), assertions.Match_StringLikeRegexp(str("AwsSolutions-.*"))))
				}},
				{"warning", func() []any {
					return msgs(ann.FindWarning(str("*"), assertions.Match_StringLikeRegexp(str("AwsSolutions-.*"))))
				}},
			} {
				for _, f := range level.found() {
					t.Errorf("%s: cdk-nag %s: %v", name, level.name, f)
				}
			}
		}
	}
}

func msgs[T any](l *[]T) []any {
	if l == nil {
		return nil
	}
	out := make([]any, 0, len(*l))
	for _, m := range *l {
		out = append(out, m)
	}
	return out
}
