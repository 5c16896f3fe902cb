package stacks

import (
	"strings"

	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Small helpers that keep jsii's pointer plumbing out of the wiring code.
func s(v string) *string        { return jsii.String(v) }
func n(v float64) *float64      { return jsii.Number(v) }
func b(v bool) *bool            { return jsii.Bool(v) }
func ss(v ...string) *[]*string { return jsii.Strings(v...) }

// nagReason is one cdk-nag finding accepted on purpose, with the reason a
// reviewer can check. appliesTo narrows it to specific findings (such as one
// wildcard resource) so a new, unreviewed finding of the same rule still fails.
// An entry starting with "regex:" is an ECMA-262 pattern (for findings that
// name a value only known once references are rendered, such as a weak
// cross-region reference's Fn::GetStackOutput).
type nagReason struct {
	id        string
	reason    string
	appliesTo []string
}

const nagRegex = "regex:"

// suppress records accepted cdk-nag findings next to the resource they are
// about. Children are included because L2 constructs hide their L1s.
func suppress(construct any, reasons ...nagReason) {
	out := make([]*cdknag.NagPackSuppression, 0, len(reasons))
	for _, r := range reasons {
		sup := &cdknag.NagPackSuppression{Id: s(r.id), Reason: s(r.reason)}
		if len(r.appliesTo) > 0 {
			applies := make([]any, len(r.appliesTo))
			for i, a := range r.appliesTo {
				if re, ok := strings.CutPrefix(a, nagRegex); ok {
					applies[i] = &cdknag.RegexAppliesTo{Regex: s(re)}
					continue
				}
				applies[i] = a
			}
			sup.AppliesTo = &applies
		}
		out = append(out, sup)
	}
	cdknag.NagSuppressions_AddResourceSuppressions(construct, &out, b(true))
}
