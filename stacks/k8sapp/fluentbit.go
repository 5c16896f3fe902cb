package k8sapp

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	fluentBitName      = "fluent-bit"
	fluentBitConfigDir = "/fluent-bit/config"
	fluentBitStateDir  = "/var/fluent-bit/state"
	fluentBitHTTPPort  = 2020
)

// fluentBitConfig tails every container log on the node, parses the CRI
// line format (joining partial lines), lets the kubernetes filter merge the
// services' JSON log line into the record and add pod metadata, and ships
// to OpenSearch with SigV4 (the pod's role via EKS Pod Identity), one index
// per day so the index lifecycle policy can delete old days. Fluent Bit's own
// log is not shipped: while OpenSearch is unreachable it would only feed
// its retry errors back into the queue (kubectl logs shows them).
func fluentBitConfig(p AppProps) string {
	return strings.TrimLeft(fmt.Sprintf(`
[SERVICE]
    Flush                     5
    Daemon                    Off
    Log_Level                 info
    HTTP_Server               On
    HTTP_Listen               0.0.0.0
    HTTP_Port                 %[1]d
    Health_Check              On
    storage.path              %[2]s/flb-storage/
    storage.sync              normal
    storage.checksum          Off
    storage.backlog.mem_limit 16M

[INPUT]
    Name              tail
    Tag               kube.*
    Path              /var/log/containers/*.log
    Exclude_Path      /var/log/containers/%[6]s-*_%[7]s_*.log
    multiline.parser  cri
    DB                %[2]s/tail-containers.db
    DB.locking        true
    Mem_Buf_Limit     32MB
    Skip_Long_Lines   On
    Refresh_Interval  10
    storage.type      filesystem

[FILTER]
    Name                kubernetes
    Match               kube.*
    Kube_URL            https://kubernetes.default.svc:443
    Kube_CA_File        /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    Kube_Token_File     /var/run/secrets/kubernetes.io/serviceaccount/token
    Kube_Tag_Prefix     kube.var.log.containers.
    Merge_Log           On
    Keep_Log            Off
    K8S-Logging.Parser  Off
    K8S-Logging.Exclude On
    Labels              On
    Annotations         Off
    Buffer_Size         0

[OUTPUT]
    Name                opensearch
    Match               kube.*
    Host                %[3]s
    Port                443
    tls                 On
    tls.verify          On
    AWS_Auth            On
    AWS_Region          %[4]s
    Logstash_Format     On
    Logstash_Prefix     %[5]s
    Logstash_DateFormat %%Y.%%m.%%d
    Suppress_Type_Name  On
    Replace_Dots        On
    Generate_ID         On
    Trace_Error         On
    Buffer_Size         False
    Retry_Limit         10
    storage.total_limit_size 512M
`, fluentBitHTTPPort, fluentBitStateDir, p.OpenSearchEndpoint, p.Region, p.LogIndexPrefix, fluentBitName, p.LoggingNamespace), "\n")
}

// fluentBit is the log shipper: a DaemonSet on every node, in its own
// namespace (it needs host paths), with read access to pod metadata.
func fluentBit(p AppProps) ([]runtime.Object, error) {
	ns, name := p.LoggingNamespace, fluentBitName
	labels := map[string]string{labelName: fluentBitName, labelPartOf: PartOf}
	m := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: ns, Labels: labels}
	}
	conf := fluentBitConfig(p)
	hostPath := func(vol, path string, t corev1.HostPathType) corev1.Volume {
		return corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr(t)}}}
	}
	clusterMeta := metav1.ObjectMeta{Name: PartOf + "-" + fluentBitName, Labels: labels}
	return []runtime.Object{
		&corev1.Namespace{
			TypeMeta: typeMeta("v1", "Namespace"),
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
				labelPartOf: PartOf,
				// Reading /var/log of the node is privileged by definition;
				// nothing else runs in this namespace.
				"pod-security.kubernetes.io/enforce": "privileged",
				"pod-security.kubernetes.io/warn":    "baseline",
			}},
		},
		&corev1.ServiceAccount{
			TypeMeta:   typeMeta("v1", "ServiceAccount"),
			ObjectMeta: m(p.ServiceAccounts.FluentBit),
		},
		&rbacv1.ClusterRole{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
			ObjectMeta: clusterMeta,
			// The kubernetes filter looks up each log line's pod.
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"get", "list", "watch"}}},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
			ObjectMeta: clusterMeta,
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterMeta.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: p.ServiceAccounts.FluentBit, Namespace: ns}},
		},
		&corev1.ConfigMap{
			TypeMeta:   typeMeta("v1", "ConfigMap"),
			ObjectMeta: m(name),
			Data:       map[string]string{"fluent-bit.conf": conf},
		},
		&appsv1.DaemonSet{
			TypeMeta:   typeMeta("apps/v1", "DaemonSet"),
			ObjectMeta: m(name),
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(1))}},
				Template: corev1.PodTemplateSpec{
					// No config checksum annotation: the config holds CDK
					// tokens, whose placeholder text says nothing about the
					// deployed values. A config change needs a rollout restart.
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						ServiceAccountName: p.ServiceAccounts.FluentBit,
						// The kubernetes filter authenticates with this token.
						AutomountServiceAccountToken: ptr(true),
						// Logs matter most when a node is under pressure.
						PriorityClassName:             "system-node-critical",
						TerminationGracePeriodSeconds: ptr(int64(30)),
						// Every node, whatever its taints: every pod's logs.
						Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
						SecurityContext: &corev1.PodSecurityContext{
							SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						Containers: []corev1.Container{{
							Name:    fluentBitName,
							Image:   p.FluentBitImage,
							Command: []string{"/fluent-bit/bin/fluent-bit", "-c", fluentBitConfigDir + "/fluent-bit.conf"},
							Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: fluentBitHTTPPort, Protocol: corev1.ProtocolTCP}},
							Resources: corev1.ResourceRequirements{
								Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
								Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
							},
							LivenessProbe: &corev1.Probe{
								ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/api/v1/health", Port: intstr.FromString("http")}},
								PeriodSeconds:    30,
								TimeoutSeconds:   5,
								FailureThreshold: 3,
							},
							ReadinessProbe: &corev1.Probe{
								ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/api/v1/health", Port: intstr.FromString("http")}},
								PeriodSeconds: 10,
							},
							// Root, to read the node's root-owned log files, but
							// with no capabilities, no privilege escalation and
							// a read-only image.
							SecurityContext: &corev1.SecurityContext{
								RunAsUser:                ptr(int64(0)),
								RunAsNonRoot:             ptr(false),
								ReadOnlyRootFilesystem:   ptr(true),
								AllowPrivilegeEscalation: ptr(false),
								Privileged:               ptr(false),
								Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
								SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
							},
							VolumeMounts: []corev1.VolumeMount{
								{Name: "config", MountPath: fluentBitConfigDir, ReadOnly: true},
								// /var/log/containers links into /var/log/pods.
								{Name: "varlog", MountPath: "/var/log", ReadOnly: true},
								// The only writable path: read positions and the
								// buffer, kept across restarts so nothing is lost
								// or shipped twice.
								{Name: "state", MountPath: fluentBitStateDir},
							},
						}},
						Volumes: []corev1.Volume{
							{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
								LocalObjectReference: corev1.LocalObjectReference{Name: name}}}},
							hostPath("varlog", "/var/log", corev1.HostPathDirectory),
							hostPath("state", fluentBitStateDir, corev1.HostPathDirectoryOrCreate),
						},
					},
				},
			},
		},
	}, nil
}
