package k8sapp

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Shutdown timing. On a pod's deletion the AWS Load Balancer Controller
// deregisters its IP from the target group, but the ALB keeps sending new
// requests for a few seconds after; the preStop sleep keeps the server
// accepting for that time, then SIGTERM lets in-flight requests finish
// within shutdownTimeout. The grace period covers both, with slack, so the
// kubelet never SIGKILLs a pod that is still draining.
const (
	preStopSeconds       = 20
	shutdownTimeout      = 20 // seconds; the services' SHUTDOWN_TIMEOUT
	graceSeconds         = preStopSeconds + shutdownTimeout + 10
	servicePort          = 80 // the public Services' port, in front of the pods' "http"
	runAsID              = 65532
	albGroupOrderVote    = 10
	albGroupOrderResult  = 20
	labelName            = "app.kubernetes.io/name"
	labelPartOf          = "app.kubernetes.io/part-of"
	labelComponent       = "app.kubernetes.io/component"
	zoneKey              = "topology.kubernetes.io/zone"
	hostnameKey          = "kubernetes.io/hostname"
	readinessGateLabel   = "elbv2.k8s.aws/pod-readiness-gate-inject"
	externalDNSHostname  = "external-dns.alpha.kubernetes.io/hostname"
	albAnnotation        = "alb.ingress.kubernetes.io/"
	secretsVolume        = "secrets"
	tmpVolume            = "tmp"
	albTLSPolicy         = "ELBSecurityPolicy-TLS13-1-2-2021-06"
	albLoadBalancerAttrs = "routing.http.drop_invalid_header_fields.enabled=true"
)

// Manifests returns every object of the app, in apply order (namespaces and
// accounts first), each a JSON-shaped map built from a typed value.
func Manifests(p AppProps) ([]map[string]any, error) {
	objs, err := Objects(p)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		m, err := toMap(o)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Objects is Manifests before the conversion to maps: the typed objects.
func Objects(p AppProps) ([]runtime.Object, error) {
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("k8sapp: %w", err)
	}
	objs := []runtime.Object{
		&corev1.Namespace{
			TypeMeta: typeMeta("v1", "Namespace"),
			ObjectMeta: metav1.ObjectMeta{Name: p.Namespace, Labels: map[string]string{
				labelPartOf: PartOf,
				// Every pod here must meet the restricted Pod Security Standard.
				"pod-security.kubernetes.io/enforce": "restricted",
				"pod-security.kubernetes.io/audit":   "restricted",
				"pod-security.kubernetes.io/warn":    "restricted",
				// The Load Balancer Controller adds a readiness gate to pods
				// behind an ALB (through an Ingress or a TargetGroupBinding):
				// a rollout waits until the new pods are healthy in the target
				// group, not merely ready in the cluster.
				readinessGateLabel: "enabled",
			}},
		},
	}
	for _, svc := range services(p) {
		objs = append(objs, &corev1.ServiceAccount{
			TypeMeta:   typeMeta("v1", "ServiceAccount"),
			ObjectMeta: meta(p.Namespace, svc.account, svc.name),
			// The services never call the Kubernetes API.
			AutomountServiceAccountToken: ptr(false),
		})
		// A service with no secrets (result on DynamoDB: Pod Identity
		// credentials only) gets no SecretProviderClass and no CSI volume.
		if svc.secrets.any() {
			spc, err := secretProviderClass(p, svc.name, svc.secrets)
			if err != nil {
				return nil, err
			}
			objs = append(objs, spc)
		}
		objs = append(objs,
			deployment(p, svc),
			hpa(p, svc),
			pdb(p, svc.name),
		)
		if svc.public {
			objs = append(objs, service(p, svc))
		}
	}
	if p.TargetGroups != nil {
		objs = append(objs, targetGroupBindings(p)...)
	} else {
		objs = append(objs, ingresses(p)...)
	}
	fb, err := fluentBit(p)
	if err != nil {
		return nil, err
	}
	return append(objs, fb...), nil
}

// svcSpec is what differs between the three services.
type svcSpec struct {
	name, image, account string
	port                 int32
	env                  []corev1.EnvVar
	secrets              secretsFor
	size                 Sizing
	public               bool // behind the ALB
}

func services(p AppProps) []svcSpec {
	redisURL := "rediss://" + net.JoinHostPort(p.RedisHost, strconv.Itoa(p.RedisPort)) + "/0"
	redisEnv := []corev1.EnvVar{
		// TLS (rediss) to ElastiCache; the AUTH token comes from the file.
		{Name: "REDIS_URL", Value: redisURL},
		{Name: "REDIS_PASSWORD_FILE", Value: SecretsDir + "/" + RedisPasswordFile},
	}
	// With DATABASE_SECRET_FILE the services take user, password, writer
	// host, port and database from the secret, and only the query string of
	// DATABASE_URL: it exists to require TLS. (sslmode=require: the RDS CA
	// bundle is not in the scratch images.)
	const tls = "?sslmode=require"
	dbEnv := []corev1.EnvVar{
		{Name: "DATABASE_SECRET_FILE", Value: SecretsDir + "/" + DatabaseFile},
		{Name: "DATABASE_URL", Value: "postgres://from-secret-file/from-secret-file" + tls},
	}
	common := func(port int32) []corev1.EnvVar {
		return []corev1.EnvVar{
			{Name: "PORT", Value: strconv.Itoa(int(port))},
			{Name: "OPTION_A", Value: p.OptionA},
			{Name: "OPTION_B", Value: p.OptionB},
			{Name: "SHUTDOWN_TIMEOUT", Value: strconv.Itoa(shutdownTimeout) + "s"},
		}
	}
	// What worker and result need to reach the vote store, and the secrets
	// that takes. Vote, in queue mode, never touches the store.
	storeEnv, storeSecrets := dbEnv, secretsFor{database: true}
	if p.Store == StoreDynamoDB {
		// No credentials here at all: the AWS SDK's default chain finds the
		// pod's EKS Pod Identity role.
		storeEnv, storeSecrets = []corev1.EnvVar{
			{Name: "STORE", Value: StoreDynamoDB},
			{Name: "DYNAMODB_TABLE", Value: p.DynamoDBTable},
			{Name: "AWS_REGION", Value: p.Region},
		}, secretsFor{}
	}
	voteEnv := append(append(common(VotePort),
		// Queue mode: a vote is accepted once it is in Redis; the worker
		// moves it to the store.
		corev1.EnvVar{Name: "VOTE_MODE", Value: "queue"}), redisEnv...)
	workerEnv := append(append(common(WorkerPort), redisEnv...), storeEnv...)
	if p.Store == StoreDynamoDB && p.DefaultWriterRegion != "" {
		workerEnv = append(workerEnv, corev1.EnvVar{Name: "DYNAMODB_DEFAULT_WRITER_REGION", Value: p.DefaultWriterRegion})
	}
	resultEnv := append(common(ResultPort), storeEnv...)
	if p.StaticBaseURL != "" {
		// The pages link their assets on the CDN; the pods still serve them.
		static := corev1.EnvVar{Name: "STATIC_BASE_URL", Value: p.StaticBaseURL}
		voteEnv, resultEnv = append(voteEnv, static), append(resultEnv, static)
	}
	if p.Store == StorePostgres && p.ReaderHost != "" {
		// Tallies come from the reader endpoint; credentials (and the
		// database, unless named) from the secret file.
		resultEnv = append(resultEnv, corev1.EnvVar{Name: "DATABASE_READ_URL",
			Value: "postgres://" + net.JoinHostPort(p.ReaderHost, strconv.Itoa(p.DatabasePort)) + "/" + p.DatabaseName + tls})
	}
	return []svcSpec{
		{name: "vote", image: p.Images.Vote, account: p.ServiceAccounts.Vote, port: VotePort, env: voteEnv,
			secrets: secretsFor{redis: true}, size: p.Vote, public: true},
		{name: "worker", image: p.Images.Worker, account: p.ServiceAccounts.Worker, port: WorkerPort, env: workerEnv,
			secrets: secretsFor{database: storeSecrets.database, redis: true}, size: p.Worker},
		{name: "result", image: p.Images.Result, account: p.ServiceAccounts.Result, port: ResultPort, env: resultEnv,
			secrets: storeSecrets, size: p.Result, public: true},
	}
}

func deployment(p AppProps, svc svcSpec) *appsv1.Deployment {
	labels := selector(svc.name)
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   3, // /readyz bounds its own checks at 2 s
			FailureThreshold: failures,
		}
	}
	container := corev1.Container{
		Name:  svc.name,
		Image: svc.image,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: svc.port, Protocol: corev1.ProtocolTCP}},
		Env:   svc.env,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(svc.size.CPURequest), corev1.ResourceMemory: resource.MustParse(svc.size.MemoryRequest)},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(svc.size.CPULimit), corev1.ResourceMemory: resource.MustParse(svc.size.MemoryLimit)},
		},
		// Up to 60 s to start (connect to Redis/PostgreSQL) before liveness counts.
		StartupProbe: probe("/healthz", 2, 30),
		// Not ready (out of the ALB and the PDB's count) while a dependency fails.
		ReadinessProbe: probe("/readyz", 5, 2),
		// Restart only when the process itself stops answering.
		LivenessProbe: probe("/healthz", 10, 3),
		VolumeMounts: []corev1.VolumeMount{
			{Name: tmpVolume, MountPath: "/tmp"},
		},
		SecurityContext: containerSecurity(),
		// Logs are JSON on stdout; a crash message goes to the pod status.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		ImagePullPolicy:          corev1.PullIfNotPresent,
	}
	// The root filesystem is read-only; a small scratch dir for anything
	// (e.g. Go's os.TempDir) that needs one.
	volumes := []corev1.Volume{{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("16Mi"))}}}}
	if svc.secrets.any() {
		// Credentials as files from Secrets Manager, through the CSI driver.
		container.VolumeMounts = append([]corev1.VolumeMount{{Name: secretsVolume, MountPath: SecretsDir, ReadOnly: true}}, container.VolumeMounts...)
		volumes = append([]corev1.Volume{{Name: secretsVolume, VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
			Driver:           SecretsStoreCSIDriver,
			ReadOnly:         ptr(true),
			VolumeAttributes: map[string]string{"secretProviderClass": secretProviderClassName(svc.name)},
		}}}}, volumes...)
	}
	if svc.public {
		container.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			// The images are FROM scratch (no shell, no sleep binary): the
			// kubelet's own sleep action.
			Sleep: &corev1.SleepAction{Seconds: preStopSeconds},
		}}
	}
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: meta(p.Namespace, svc.name, svc.name),
		Spec: appsv1.DeploymentSpec{
			// No replicas: the HPA owns the count, and a re-apply must not
			// reset a scaled-out service to its minimum.
			Selector:             &metav1.LabelSelector{MatchLabels: labels},
			RevisionHistoryLimit: ptr(int32(5)),
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				// Add before removing: capacity never drops during a rollout.
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromString("50%"))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(svc.name)},
				Spec: corev1.PodSpec{
					ServiceAccountName:            svc.account,
					AutomountServiceAccountToken:  ptr(false),
					TerminationGracePeriodSeconds: ptr(int64(graceSeconds)),
					EnableServiceLinks:            ptr(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						RunAsUser:      ptr(int64(runAsID)),
						RunAsGroup:     ptr(int64(runAsID)),
						FSGroup:        ptr(int64(runAsID)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					NodeSelector: map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
						// Across AZs strictly: losing a zone leaves the other half.
						{MaxSkew: 1, TopologyKey: zoneKey, WhenUnsatisfiable: corev1.DoNotSchedule,
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, MatchLabelKeys: []string{"pod-template-hash"}},
						// Across nodes as far as possible.
						{MaxSkew: 1, TopologyKey: hostnameKey, WhenUnsatisfiable: corev1.ScheduleAnyway,
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, MatchLabelKeys: []string{"pod-template-hash"}},
					},
					Containers: []corev1.Container{container},
					Volumes:    volumes,
				},
			},
		},
	}
}

func containerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr(true),
		RunAsUser:                ptr(int64(runAsID)),
		RunAsGroup:               ptr(int64(runAsID)),
		ReadOnlyRootFilesystem:   ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		Privileged:               ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func service(p AppProps, svc svcSpec) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: meta(p.Namespace, svc.name, svc.name),
		Spec: corev1.ServiceSpec{
			// ClusterIP: the ALB targets pod IPs directly (target-type ip),
			// so no node port is opened.
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector(svc.name),
			Ports:    []corev1.ServicePort{{Name: "http", Port: servicePort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

func hpa(p AppProps, svc svcSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   typeMeta("autoscaling/v2", "HorizontalPodAutoscaler"),
		ObjectMeta: meta(p.Namespace, svc.name, svc.name),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: svc.name},
			MinReplicas:    ptr(svc.size.MinReplicas),
			MaxReplicas:    svc.size.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(svc.size.TargetCPUPercent)},
				},
			}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				// Scale in slowly: a load test's pauses must not flap the fleet.
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(300))},
			},
		},
	}
}

func pdb(p AppProps, svc string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   typeMeta("policy/v1", "PodDisruptionBudget"),
		ObjectMeta: meta(p.Namespace, svc, svc),
		Spec: policyv1.PodDisruptionBudgetSpec{
			// One pod at a time during node drains and upgrades, whatever
			// the HPA has scaled to.
			MaxUnavailable: ptr(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selector(svc)},
			// A pod that is not ready anyway must not block a drain.
			UnhealthyPodEvictionPolicy: ptr(policyv1.AlwaysAllow),
		},
	}
}

// ingresses puts vote and result behind ONE internet-facing ALB (an
// IngressGroup). With host names, both share the listeners and the host
// decides; without, vote answers on port 80 and result on port 8081.
func ingresses(p AppProps) []runtime.Object {
	type route struct {
		svc, host string
		order     int
		port      int // ALB listener port without host names
	}
	routes := []route{{"vote", p.VoteHost, albGroupOrderVote, 80}, {"result", p.ResultHost, albGroupOrderResult, ResultPort}}
	var out []runtime.Object
	for _, r := range routes {
		a := map[string]string{
			albAnnotation + "group.name":  p.Namespace,
			albAnnotation + "group.order": strconv.Itoa(r.order),
			albAnnotation + "scheme":      "internet-facing",
			// Pod IPs are targets: no NodePort hop, and the readiness gate works.
			albAnnotation + "target-type":                  "ip",
			albAnnotation + "healthcheck-path":             HealthCheckPath,
			albAnnotation + "healthcheck-interval-seconds": "10",
			albAnnotation + "healthy-threshold-count":      "2",
			albAnnotation + "unhealthy-threshold-count":    "2",
			albAnnotation + "success-codes":                "200",
			albAnnotation + "target-group-attributes":      "deregistration_delay.timeout_seconds=" + strconv.Itoa(DeregistrationDelaySeconds),
			albAnnotation + "load-balancer-attributes":     albLoadBalancerAttrs,
			albAnnotation + "tags":                         labelPartOf + "=" + PartOf,
		}
		switch {
		case r.host != "" && p.CertificateArn != "":
			a[albAnnotation+"listen-ports"] = `[{"HTTP":80},{"HTTPS":443}]`
			a[albAnnotation+"certificate-arn"] = p.CertificateArn
			a[albAnnotation+"ssl-policy"] = albTLSPolicy
			a[albAnnotation+"ssl-redirect"] = "443"
		case r.host != "":
			a[albAnnotation+"listen-ports"] = `[{"HTTP":80}]`
		default:
			a[albAnnotation+"listen-ports"] = fmt.Sprintf(`[{"HTTP":%d}]`, r.port)
		}
		if r.host != "" {
			// ExternalDNS makes the Route 53 record for the ALB.
			a[externalDNSHostname] = r.host
		}
		m := meta(p.Namespace, r.svc, r.svc)
		m.Annotations = a
		out = append(out, &networkingv1.Ingress{
			TypeMeta:   typeMeta("networking.k8s.io/v1", "Ingress"),
			ObjectMeta: m,
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr("alb"),
				Rules: []networkingv1.IngressRule{{
					Host: r.host,
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{
							Path:     "/",
							PathType: ptr(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
								Name: r.svc, Port: networkingv1.ServiceBackendPort{Name: "http"}}},
						}},
					}},
				}},
			},
		})
	}
	return out
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func selector(svc string) map[string]string {
	return map[string]string{labelName: svc, labelPartOf: PartOf}
}

func podLabels(svc string) map[string]string {
	l := selector(svc)
	l[labelComponent] = svc
	return l
}

func meta(namespace, name, svc string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: selector(svc)}
}

func ptr[T any](v T) *T { return &v }

// toMap renders a typed object as the JSON-shaped map CDK's manifest
// resources take.
func toMap(o runtime.Object) (map[string]any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	// Status is the cluster's to write; the typed structs always carry one.
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		if v, ok := md["creationTimestamp"]; ok && v == nil {
			delete(md, "creationTimestamp")
		}
	}
	if m["apiVersion"] == nil || m["kind"] == nil || strings.TrimSpace(fmt.Sprint(m["kind"])) == "" {
		return nil, fmt.Errorf("k8sapp: object without apiVersion/kind: %s", b)
	}
	return m, nil
}
