package k8sapp

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SecretProviderClassGroupVersion is the Secrets Store CSI driver's API.
var SecretProviderClassGroupVersion = schema.GroupVersion{Group: "secrets-store.csi.x-k8s.io", Version: "v1"}

// SecretsStoreCSIDriver is the CSI driver name pods mount volumes from.
const SecretsStoreCSIDriver = "secrets-store.csi.k8s.io"

// SecretProviderClass mirrors the driver's CRD (secrets-store.csi.x-k8s.io/v1),
// limited to the fields this app uses: no secretObjects, because syncing the
// credentials into Kubernetes Secrets is exactly what the app avoids.
type SecretProviderClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              SecretProviderClassSpec `json:"spec"`
}

// SecretProviderClassSpec is the CRD's spec.
type SecretProviderClassSpec struct {
	// Provider is "aws" for the AWS Secrets and Configuration Provider.
	Provider string `json:"provider"`
	// Parameters are provider-specific; for aws: objects (a YAML list),
	// region, usePodIdentity.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// DeepCopyObject implements runtime.Object so the type can live in the scheme
// Decode uses.
func (in *SecretProviderClass) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &SecretProviderClass{TypeMeta: in.TypeMeta, Spec: SecretProviderClassSpec{Provider: in.Spec.Provider}}
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.Parameters != nil {
		out.Spec.Parameters = make(map[string]string, len(in.Spec.Parameters))
		for k, v := range in.Spec.Parameters {
			out.Spec.Parameters[k] = v
		}
	}
	return out
}

// ascpObject is one entry of the AWS provider's "objects" parameter.
type ascpObject struct {
	ObjectName  string     `json:"objectName"`
	ObjectType  string     `json:"objectType"`
	ObjectAlias string     `json:"objectAlias,omitempty"`
	JMESPath    []ascpPath `json:"jmesPath,omitempty"`
}

type ascpPath struct {
	Path        string `json:"path"`
	ObjectAlias string `json:"objectAlias"`
}

// secretsFor lists what one service needs mounted.
type secretsFor struct{ database, redis bool }

func (s secretsFor) any() bool { return s.database || s.redis }

// secretProviderClass maps the service's secrets, by ARN only, to files in
// SecretsDir: the database secret whole (the services parse the RDS JSON
// themselves) as DatabaseFile, the Redis AUTH token as RedisPasswordFile.
func secretProviderClass(p AppProps, svc string, need secretsFor) (*SecretProviderClass, error) {
	if !need.any() {
		// An empty objects list would still be a valid class and mount an
		// empty directory: the caller must emit neither.
		return nil, fmt.Errorf("%s: no secrets to mount, so no SecretProviderClass", svc)
	}
	var objs []ascpObject
	if need.database {
		objs = append(objs, ascpObject{ObjectName: p.DatabaseSecretArn, ObjectType: "secretsmanager", ObjectAlias: DatabaseFile})
	}
	if need.redis {
		if p.RedisAuthSecretJSONKey == "" {
			objs = append(objs, ascpObject{ObjectName: p.RedisAuthSecretArn, ObjectType: "secretsmanager", ObjectAlias: RedisPasswordFile})
		} else {
			// The provider also writes the whole JSON (under its alias); the
			// service reads only the extracted key.
			objs = append(objs, ascpObject{ObjectName: p.RedisAuthSecretArn, ObjectType: "secretsmanager", ObjectAlias: "redis-auth.json",
				JMESPath: []ascpPath{{Path: p.RedisAuthSecretJSONKey, ObjectAlias: RedisPasswordFile}}})
		}
	}
	// JSON is YAML: the provider parses this list with a YAML decoder.
	b, err := json.Marshal(objs)
	if err != nil {
		return nil, fmt.Errorf("%s: secret objects: %w", svc, err)
	}
	return &SecretProviderClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: SecretProviderClassGroupVersion.String(), Kind: "SecretProviderClass"},
		ObjectMeta: meta(p.Namespace, secretProviderClassName(svc), svc),
		Spec: SecretProviderClassSpec{
			Provider: "aws",
			Parameters: map[string]string{
				"objects": string(b),
				"region":  p.Region,
				// EKS Pod Identity: the provider fetches with the pod's
				// service account's role, so each service reads only its own
				// secrets.
				"usePodIdentity": "true",
			},
		},
	}, nil
}

func secretProviderClassName(svc string) string { return svc + "-secrets" }
