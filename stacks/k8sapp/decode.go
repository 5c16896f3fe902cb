package k8sapp

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// scheme knows every type Manifests emits, and nothing else: an object of
// another kind is an error too.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	s.AddKnownTypes(SecretProviderClassGroupVersion, &SecretProviderClass{})
	s.AddKnownTypes(TargetGroupBindingGroupVersion, &TargetGroupBinding{})
	return s
}()

// strict rejects unknown and duplicate fields, and values of the wrong type.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Strict: true})

// Decode decodes one rendered manifest into its typed object, strictly: a
// field the type does not have (a misspelling, a field at the wrong level),
// a value of the wrong type or an unknown apiVersion/kind is an error.
func Decode(obj map[string]any) (runtime.Object, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	gvk := schema.FromAPIVersionAndKind(fmt.Sprint(obj["apiVersion"]), fmt.Sprint(obj["kind"]))
	if !scheme.Recognizes(gvk) {
		return nil, fmt.Errorf("k8sapp: %s is not a kind this app emits", gvk)
	}
	out, _, err := strict.Decode(b, nil, nil)
	if err != nil {
		// Strict errors come with a decoded object; they are errors all the same.
		return nil, fmt.Errorf("k8sapp: %s %v: %w", gvk.Kind, name(obj), err)
	}
	return out, nil
}

func name(obj map[string]any) any {
	if md, ok := obj["metadata"].(map[string]any); ok {
		return md["name"]
	}
	return nil
}
