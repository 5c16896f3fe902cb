package k8sapp

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TargetGroupBindingGroupVersion is the AWS Load Balancer Controller's API
// for TargetGroupBinding.
var TargetGroupBindingGroupVersion = schema.GroupVersion{Group: "elbv2.k8s.aws", Version: "v1beta1"}

// TargetGroupBinding mirrors the AWS Load Balancer Controller's CRD
// (elbv2.k8s.aws/v1beta1), limited to the fields this app uses. In
// particular there is no spec.networking: with it the controller would edit
// the pods' security group itself, and the rule from the ALB to the pods is
// CloudFormation's (it owns the ALB), so Decode rejects the field.
type TargetGroupBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TargetGroupBindingSpec `json:"spec"`
}

// TargetGroupBindingSpec is the CRD's spec.
type TargetGroupBindingSpec struct {
	// TargetGroupARN is the target group the controller registers the
	// Service's endpoints in.
	TargetGroupARN string `json:"targetGroupARN"`
	// TargetType is "ip" (pod IPs) or "instance"; the controller infers it
	// from the target group when unset.
	TargetType string `json:"targetType,omitempty"`
	// ServiceRef names the Service and one of its ports.
	ServiceRef TargetGroupBindingServiceRef `json:"serviceRef"`
}

// TargetGroupBindingServiceRef is the CRD's spec.serviceRef.
type TargetGroupBindingServiceRef struct {
	Name string `json:"name"`
	// Port is the Service port (number or name); with targetType ip the
	// controller registers each ready pod at that port's targetPort.
	Port intstr.IntOrString `json:"port"`
}

// DeepCopyObject implements runtime.Object so the type can live in the scheme
// Decode uses.
func (in *TargetGroupBinding) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &TargetGroupBinding{TypeMeta: in.TypeMeta, Spec: in.Spec} // the spec holds no pointers, maps or slices
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return out
}

// targetGroupBindings binds the public Services to target groups made
// outside the cluster (Tier 4's CloudFormation ALB), in place of Ingresses.
// The controller only registers and deregisters pod IPs (and, with the
// namespace's readiness-gate label, gates rollouts on target health); the
// ALB, its listeners, the target groups' health checks and the security
// group rule from the ALB to the pods are all made in CloudFormation. That
// is why spec.networking is not set: the controller must not also manage
// ingress rules on the pods' security group.
func targetGroupBindings(p AppProps) []runtime.Object {
	var out []runtime.Object
	for _, b := range []struct{ svc, arn string }{{"vote", p.TargetGroups.Vote}, {"result", p.TargetGroups.Result}} {
		name := b.svc
		if p.TargetGroups.Revision != "" {
			name += "-" + p.TargetGroups.Revision
		}
		out = append(out, &TargetGroupBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: TargetGroupBindingGroupVersion.String(), Kind: "TargetGroupBinding"},
			ObjectMeta: meta(p.Namespace, name, b.svc),
			Spec: TargetGroupBindingSpec{
				TargetGroupARN: b.arn,
				// Pod IPs, as with the Ingresses: no NodePort hop, and the
				// readiness gate works.
				TargetType: "ip",
				ServiceRef: TargetGroupBindingServiceRef{Name: b.svc, Port: intstr.FromInt32(servicePort)},
			},
		})
	}
	return out
}
