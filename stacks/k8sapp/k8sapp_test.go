package k8sapp

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// The ARNs and hosts stand in for CDK tokens, which pass through unchanged.
const (
	dbArn    = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:ladder-db-AbCdEf"
	redisArn = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:ladder-redis-GhIjKl"
	certArn  = "arn:aws:acm:eu-west-1:111111111111:certificate/0000"
	redis    = "${Token[TOKEN.101]}"
	reader   = "ladder-db.cluster-ro-x.eu-west-1.rds.amazonaws.com"
	search   = "vpc-ladder-logs-x.eu-west-1.es.amazonaws.com"
	table    = "${Token[TOKEN.202]}"
	voteTG   = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:targetgroup/ladder-vote/0123456789abcdef"
	resultTG = "${Token[TOKEN.303]}"
)

func baseProps() AppProps {
	return AppProps{
		Images:             ServiceImages{Vote: "111.dkr.ecr/vote:1", Worker: "111.dkr.ecr/worker:1", Result: "111.dkr.ecr/result:1"},
		RedisHost:          redis,
		RedisAuthSecretArn: redisArn,
		DatabaseSecretArn:  dbArn,
		ReaderHost:         reader,
		Region:             "eu-west-1",
		OpenSearchEndpoint: search,
		LogIndexPrefix:     "ladder-tier3",
	}
}

// tier4Props is Tier 4's shape: votes in DynamoDB, the Services bound to a
// CloudFormation ALB's target groups.
func tier4Props() AppProps {
	p := baseProps()
	p.Store, p.DynamoDBTable = StoreDynamoDB, table
	p.DatabaseSecretArn, p.ReaderHost = "", ""
	p.TargetGroups = &TargetGroupArns{Vote: voteTG, Result: resultTG}
	return p
}

func withDomain(p AppProps) AppProps {
	p.VoteHost, p.ResultHost, p.CertificateArn = "vote.example.com", "result.example.com", certArn
	return p
}

// decoded renders p and decodes every object strictly: what the cluster
// would be asked to apply, read back into the typed values.
func decoded(t *testing.T, p AppProps) []runtime.Object {
	t.Helper()
	ms, err := Manifests(p)
	if err != nil {
		t.Fatalf("Manifests: %v", err)
	}
	var out []runtime.Object
	for _, m := range ms {
		o, err := Decode(m)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		out = append(out, o)
	}
	return out
}

func all[T runtime.Object](objs []runtime.Object) map[string]T {
	out := map[string]T{}
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out[o.(interface{ GetName() string }).GetName()] = v
		}
	}
	return out
}

var appServices = []string{"vote", "worker", "result"}

func TestEveryObjectDecodesStrictly(t *testing.T) {
	for name, p := range map[string]AppProps{"no domain": baseProps(), "domain": withDomain(baseProps()), "tier4": tier4Props()} {
		t.Run(name, func(t *testing.T) {
			objs := decoded(t, p)
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
			}
			lb := "Ingress"
			if p.TargetGroups != nil {
				lb = "TargetGroupBinding"
			}
			for _, k := range []string{"Namespace", "ServiceAccount", "SecretProviderClass", "Deployment", "Service",
				lb, "HorizontalPodAutoscaler", "PodDisruptionBudget", "DaemonSet", "ConfigMap", "ClusterRole", "ClusterRoleBinding"} {
				if !slices.Contains(kinds, k) {
					t.Errorf("no %s among %v", k, kinds)
				}
			}
			// Namespaces come first so a single ordered apply succeeds.
			if kinds[0] != "Namespace" {
				t.Errorf("first object is a %s, want the Namespace", kinds[0])
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	ms, err := Manifests(baseProps())
	if err != nil {
		t.Fatal(err)
	}
	t4, err := Manifests(tier4Props())
	if err != nil {
		t.Fatal(err)
	}
	ms = append(ms, t4...)
	find := func(kind string) map[string]any {
		for _, m := range ms {
			if m["kind"] == kind {
				b, _ := json.Marshal(m)
				var c map[string]any
				_ = json.Unmarshal(b, &c)
				return c
			}
		}
		t.Fatalf("no %s", kind)
		return nil
	}
	dep := find("Deployment")
	dep["spec"].(map[string]any)["replica"] = 2 // misspelt
	spc := find("SecretProviderClass")
	spc["spec"].(map[string]any)["secretObject"] = []any{} // misspelt CRD field
	hpa := find("HorizontalPodAutoscaler")
	hpa["spec"].(map[string]any)["maxReplicas"] = "ten" // wrong type
	sec := find("Namespace")
	sec["kind"], sec["data"] = "Secret", map[string]any{"password": "c2VjcmV0"} // a kind the app never emits
	tgb := find("TargetGroupBinding")
	spec := tgb["spec"].(map[string]any)
	spec["targetGroupArn"] = spec["targetGroupARN"] // misspelt (the CRD's field is targetGroupARN)
	delete(spec, "targetGroupARN")
	// The security-group rule is CloudFormation's: the app never asks the
	// controller for one.
	tgbNet := find("TargetGroupBinding")
	tgbNet["spec"].(map[string]any)["networking"] = map[string]any{"ingress": []any{}}
	for name, m := range map[string]map[string]any{"unknown field": dep, "unknown CRD field": spc, "wrong type": hpa, "unexpected kind": sec,
		"misspelt TargetGroupBinding field": tgb, "TargetGroupBinding networking": tgbNet} {
		if _, err := Decode(m); err == nil {
			t.Errorf("%s: Decode accepted %v", name, m)
		}
	}
}

func TestNoSecretValuesOnlyArns(t *testing.T) {
	objs := decoded(t, withDomain(baseProps()))
	for _, o := range objs {
		switch o.(type) {
		case *corev1.Secret:
			t.Errorf("a Kubernetes Secret is emitted: credentials must stay in Secrets Manager")
		}
	}
	ms, _ := Manifests(withDomain(baseProps()))
	b, _ := json.Marshal(ms)
	text := strings.ToLower(string(b))
	// No env var carries a credential: only paths to the mounted files.
	for _, d := range all[*appsv1.Deployment](objs) {
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.ValueFrom != nil {
				t.Errorf("%s: env %s comes from %v; credentials come from files", d.Name, e.Name, e.ValueFrom)
			}
			if strings.Contains(e.Value, "@") {
				t.Errorf("%s: env %s=%q carries user info", d.Name, e.Name, e.Value)
			}
			if strings.Contains(strings.ToUpper(e.Name), "PASSWORD") && !strings.HasSuffix(e.Name, "_FILE") {
				t.Errorf("%s: env %s looks like a password", d.Name, e.Name)
			}
		}
	}
	for _, bad := range []string{"authtoken", "\"password\":", "secretkeyref", "stringdata"} {
		if strings.Contains(text, bad) {
			t.Errorf("rendered manifests contain %q", bad)
		}
	}
	// The secrets are referenced by ARN, in SecretProviderClasses only.
	spcs := all[*SecretProviderClass](objs)
	for svc, arns := range map[string][]string{"vote": {redisArn}, "worker": {dbArn, redisArn}, "result": {dbArn}} {
		spc := spcs[svc+"-secrets"]
		if spc == nil {
			t.Fatalf("no SecretProviderClass for %s", svc)
		}
		var objects []ascpObject
		if err := yaml.UnmarshalStrict([]byte(spc.Spec.Parameters["objects"]), &objects); err != nil {
			t.Fatalf("%s objects: %v", svc, err)
		}
		var got []string
		for _, o := range objects {
			got = append(got, o.ObjectName)
			if o.ObjectType != "secretsmanager" {
				t.Errorf("%s: objectType %q", svc, o.ObjectType)
			}
		}
		if !slices.Equal(got, arns) {
			t.Errorf("%s mounts %v, want exactly %v (least privilege: only what it uses)", svc, got, arns)
		}
		if spc.Spec.Provider != "aws" || spc.Spec.Parameters["usePodIdentity"] != "true" || spc.Spec.Parameters["region"] != "eu-west-1" {
			t.Errorf("%s: provider/parameters %v", svc, spc.Spec.Parameters)
		}
	}
}

func TestSecretFileNames(t *testing.T) {
	spc, err := secretProviderClass(baseProps().withDefaults(), "worker", secretsFor{database: true, redis: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := spc.Spec.Parameters["objects"]; !strings.Contains(got, `"objectAlias":"database.json"`) || !strings.Contains(got, `"objectAlias":"redis-password"`) {
		t.Errorf("objects %s: want database.json and redis-password", got)
	}
	// A JSON Redis secret: the token is extracted to the same file name.
	p := baseProps()
	p.RedisAuthSecretJSONKey = "password"
	spc, err = secretProviderClass(p.withDefaults(), "vote", secretsFor{redis: true})
	if err != nil {
		t.Fatal(err)
	}
	var objects []ascpObject
	if err := yaml.UnmarshalStrict([]byte(spc.Spec.Parameters["objects"]), &objects); err != nil {
		t.Fatal(err)
	}
	if len(objects) != 1 || len(objects[0].JMESPath) != 1 || objects[0].JMESPath[0] != (ascpPath{Path: "password", ObjectAlias: RedisPasswordFile}) {
		t.Errorf("objects %+v: want the password key extracted to %s", objects, RedisPasswordFile)
	}
}

func envOf(d *appsv1.Deployment) map[string]string {
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if _, dup := env[e.Name]; dup {
			panic("duplicate env " + e.Name)
		}
		env[e.Name] = e.Value
	}
	return env
}

func TestEnvironmentPerService(t *testing.T) {
	deps := all[*appsv1.Deployment](decoded(t, baseProps()))
	const redisURL = "rediss://" + redis + ":6379/0"
	want := map[string]map[string]string{
		"vote": {"PORT": "8080", "VOTE_MODE": "queue", "REDIS_URL": redisURL, "REDIS_PASSWORD_FILE": "/run/secrets/redis-password"},
		"worker": {"PORT": "8082", "REDIS_URL": redisURL, "REDIS_PASSWORD_FILE": "/run/secrets/redis-password",
			"DATABASE_SECRET_FILE": "/run/secrets/database.json", "DATABASE_URL": "postgres://from-secret-file/from-secret-file?sslmode=require"},
		"result": {"PORT": "8081", "DATABASE_SECRET_FILE": "/run/secrets/database.json",
			"DATABASE_URL":      "postgres://from-secret-file/from-secret-file?sslmode=require",
			"DATABASE_READ_URL": "postgres://" + reader + ":5432/?sslmode=require"},
	}
	absent := map[string][]string{
		"vote":   {"DATABASE_URL", "DATABASE_SECRET_FILE"},
		"worker": {"DATABASE_READ_URL"},
		"result": {"REDIS_URL", "REDIS_PASSWORD_FILE", "VOTE_MODE"},
	}
	for svc, kv := range want {
		d := deps[svc]
		if d == nil {
			t.Fatalf("no Deployment %s", svc)
		}
		env := envOf(d)
		for k, v := range kv {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", svc, k, env[k], v)
			}
		}
		for _, k := range absent[svc] {
			if _, ok := env[k]; ok {
				t.Errorf("%s: %s set; the service does not use it", svc, k)
			}
		}
		if env["OPTION_A"] != "Cats" || env["OPTION_B"] != "Dogs" {
			t.Errorf("%s: options %q/%q", svc, env["OPTION_A"], env["OPTION_B"])
		}
		if d.Spec.Template.Spec.Containers[0].Image != map[string]string{"vote": "111.dkr.ecr/vote:1", "worker": "111.dkr.ecr/worker:1", "result": "111.dkr.ecr/result:1"}[svc] {
			t.Errorf("%s: image %s", svc, d.Spec.Template.Spec.Containers[0].Image)
		}
	}
	// Without a reader endpoint, result reads from the writer (the secret).
	p := baseProps()
	p.ReaderHost, p.DatabaseName = "", "votes"
	if _, ok := envOf(all[*appsv1.Deployment](decoded(t, p))["result"])["DATABASE_READ_URL"]; ok {
		t.Error("DATABASE_READ_URL set without a reader endpoint")
	}
	p.ReaderHost = reader
	if got := envOf(all[*appsv1.Deployment](decoded(t, p))["result"])["DATABASE_READ_URL"]; got != "postgres://"+reader+":5432/votes?sslmode=require" {
		t.Errorf("DATABASE_READ_URL %q with DatabaseName votes", got)
	}
}

func TestPodsAreHardened(t *testing.T) {
	objs := decoded(t, baseProps())
	deps := all[*appsv1.Deployment](objs)
	accounts := all[*corev1.ServiceAccount](objs)
	for _, svc := range appServices {
		d := deps[svc]
		ps := d.Spec.Template.Spec
		if len(ps.Containers) != 1 {
			t.Fatalf("%s: %d containers", svc, len(ps.Containers))
		}
		c := ps.Containers[0]
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: container securityContext %+v", svc, sc)
		}
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod securityContext %+v", svc, ps.SecurityContext)
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			t.Errorf("%s: the service account token is mounted; the services never call the API", svc)
		}
		if ps.ServiceAccountName != svc || accounts[svc] == nil {
			t.Errorf("%s: service account %q (exists: %v)", svc, ps.ServiceAccountName, accounts[svc] != nil)
		}
		if ps.HostNetwork || ps.HostPID || ps.HostIPC {
			t.Errorf("%s: shares a host namespace", svc)
		}
		// Credentials: the CSI volume, read-only, at /run/secrets.
		var csi *corev1.CSIVolumeSource
		for _, v := range ps.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: hostPath volume %s", svc, v.Name)
			}
			if v.CSI != nil {
				csi = v.CSI
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
					return m.Name == v.Name && m.MountPath == "/run/secrets" && m.ReadOnly
				}) {
					t.Errorf("%s: CSI volume not mounted read-only at /run/secrets: %+v", svc, c.VolumeMounts)
				}
			}
		}
		if csi == nil || csi.Driver != "secrets-store.csi.k8s.io" || csi.ReadOnly == nil || !*csi.ReadOnly || csi.VolumeAttributes["secretProviderClass"] != svc+"-secrets" {
			t.Errorf("%s: secrets volume %+v", svc, csi)
		}
	}
	// The app namespace enforces the restricted Pod Security Standard.
	ns := all[*corev1.Namespace](objs)["ladder"]
	if ns == nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace ladder: %+v", ns)
	}
}

func TestProbesAndResources(t *testing.T) {
	deps := all[*appsv1.Deployment](decoded(t, baseProps()))
	for _, svc := range appServices {
		c := deps[svc].Spec.Template.Spec.Containers[0]
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness %+v", svc, c.ReadinessProbe)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness %+v", svc, c.LivenessProbe)
		}
		if c.StartupProbe == nil || c.StartupProbe.HTTPGet == nil || c.StartupProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: startup %+v", svc, c.StartupProbe)
		}
		// The probes hit the port the service listens on (PORT).
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" || strconv.Itoa(int(c.Ports[0].ContainerPort)) != envOf(deps[svc])["PORT"] ||
			c.ReadinessProbe.HTTPGet.Port.StrVal != "http" || c.LivenessProbe.HTTPGet.Port.StrVal != "http" {
			t.Errorf("%s: ports %+v, probes on %v", svc, c.Ports, c.ReadinessProbe.HTTPGet.Port)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okr := c.Resources.Requests[r]
			lim, okl := c.Resources.Limits[r]
			if !okr || !okl || req.IsZero() || req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %v limit %v", svc, r, req, lim)
			}
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	deps := all[*appsv1.Deployment](decoded(t, baseProps()))
	for _, svc := range appServices {
		ps := deps[svc].Spec.Template.Spec
		c := ps.Containers[0]
		shutdown, err := strconv.Atoi(strings.TrimSuffix(envOf(deps[svc])["SHUTDOWN_TIMEOUT"], "s"))
		if err != nil {
			t.Fatalf("%s: SHUTDOWN_TIMEOUT: %v", svc, err)
		}
		var preStop int64
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			preStop = c.Lifecycle.PreStop.Sleep.Seconds
		}
		if svc != "worker" && preStop < 10 {
			t.Errorf("%s: preStop sleep %ds: the ALB needs time to deregister the pod before SIGTERM", svc, preStop)
		}
		if ps.TerminationGracePeriodSeconds == nil || *ps.TerminationGracePeriodSeconds <= preStop+int64(shutdown) {
			t.Errorf("%s: grace period %v must exceed preStop %ds + SHUTDOWN_TIMEOUT %ds", svc, ps.TerminationGracePeriodSeconds, preStop, shutdown)
		}
	}
}

func TestTopologySpread(t *testing.T) {
	deps := all[*appsv1.Deployment](decoded(t, baseProps()))
	for _, svc := range appServices {
		d := deps[svc]
		var zone, host bool
		for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
			matches := c.LabelSelector != nil && c.LabelSelector.MatchLabels["app.kubernetes.io/name"] == svc
			switch {
			case c.TopologyKey == "topology.kubernetes.io/zone" && c.WhenUnsatisfiable == corev1.DoNotSchedule && c.MaxSkew == 1 && matches:
				zone = true
			case c.TopologyKey == "kubernetes.io/hostname" && matches:
				host = true
			}
		}
		if !zone || !host {
			t.Errorf("%s: zone spread %v, host spread %v: %+v", svc, zone, host, d.Spec.Template.Spec.TopologySpreadConstraints)
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("%s: selector %s=%s not on the pod template", svc, k, v)
			}
		}
	}
}

func TestAutoscalersAndDisruptionBudgets(t *testing.T) {
	objs := decoded(t, baseProps())
	hpas := all[*autoscalingv2.HorizontalPodAutoscaler](objs)
	pdbs := all[*policyv1.PodDisruptionBudget](objs)
	deps := all[*appsv1.Deployment](objs)
	for _, svc := range appServices {
		h := hpas[svc]
		if h == nil {
			t.Fatalf("%s: no HorizontalPodAutoscaler", svc)
		}
		if h.Spec.ScaleTargetRef != (autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: svc}) {
			t.Errorf("%s: HPA targets %+v", svc, h.Spec.ScaleTargetRef)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("%s: HPA bounds %v..%d: at least 2 pods, one per zone", svc, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
			h.Spec.Metrics[0].Resource.Target.AverageUtilization == nil || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
			t.Errorf("%s: HPA metrics %+v", svc, h.Spec.Metrics)
		}
		if deps[svc].Spec.Replicas != nil {
			t.Errorf("%s: Deployment sets replicas; the HPA owns the count", svc)
		}
		b := pdbs[svc]
		if b == nil {
			t.Fatalf("%s: no PodDisruptionBudget", svc)
		}
		if (b.Spec.MaxUnavailable == nil || b.Spec.MaxUnavailable.IntValue() != 1) && (b.Spec.MinAvailable == nil || b.Spec.MinAvailable.IntValue() < 1) {
			t.Errorf("%s: PDB %+v", svc, b.Spec)
		}
		if b.Spec.Selector == nil || b.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != svc || b.Namespace != "ladder" {
			t.Errorf("%s: PDB selects %+v in %s", svc, b.Spec.Selector, b.Namespace)
		}
	}
	// Sizing overrides reach the HPA.
	p := baseProps()
	p.Vote = Sizing{MinReplicas: 3, MaxReplicas: 20}
	h := all[*autoscalingv2.HorizontalPodAutoscaler](decoded(t, p))["vote"]
	if *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 20 {
		t.Errorf("vote HPA %d..%d, want 3..20", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
}

func TestServicesAreClusterIP(t *testing.T) {
	svcs := all[*corev1.Service](decoded(t, baseProps()))
	for _, name := range []string{"vote", "result"} {
		s := svcs[name]
		if s == nil || s.Spec.Type != corev1.ServiceTypeClusterIP || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.StrVal != "http" ||
			s.Spec.Selector["app.kubernetes.io/name"] != name {
			t.Errorf("Service %s: %+v", name, s)
		}
	}
	if len(svcs) != 2 {
		t.Errorf("%d Services, want vote and result only (the worker takes no traffic)", len(svcs))
	}
}

func TestIngressWithDomain(t *testing.T) {
	ings := all[*networkingv1.Ingress](decoded(t, withDomain(baseProps())))
	for svc, host := range map[string]string{"vote": "vote.example.com", "result": "result.example.com"} {
		ing := ings[svc]
		if ing == nil {
			t.Fatalf("no Ingress %s", svc)
		}
		a := ing.Annotations
		for k, v := range map[string]string{
			"alb.ingress.kubernetes.io/scheme":           "internet-facing",
			"alb.ingress.kubernetes.io/target-type":      "ip",
			"alb.ingress.kubernetes.io/healthcheck-path": "/healthz",
			"alb.ingress.kubernetes.io/group.name":       "ladder",
			"alb.ingress.kubernetes.io/listen-ports":     `[{"HTTP":80},{"HTTPS":443}]`,
			"alb.ingress.kubernetes.io/ssl-redirect":     "443",
			"alb.ingress.kubernetes.io/certificate-arn":  certArn,
			"external-dns.alpha.kubernetes.io/hostname":  host,
		} {
			if a[k] != v {
				t.Errorf("%s: %s=%q, want %q", svc, k, a[k], v)
			}
		}
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "alb" {
			t.Errorf("%s: class %v", svc, ing.Spec.IngressClassName)
		}
		if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != host || ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != svc {
			t.Errorf("%s: rules %+v", svc, ing.Spec.Rules)
		}
	}
	// Without a certificate: plain HTTP, no redirect.
	p := withDomain(baseProps())
	p.CertificateArn = ""
	for _, ing := range all[*networkingv1.Ingress](decoded(t, p)) {
		if _, ok := ing.Annotations["alb.ingress.kubernetes.io/ssl-redirect"]; ok || ing.Annotations["alb.ingress.kubernetes.io/listen-ports"] != `[{"HTTP":80}]` {
			t.Errorf("%s without certificate: %v", ing.Name, ing.Annotations)
		}
	}
}

func TestIngressWithoutDomain(t *testing.T) {
	ings := all[*networkingv1.Ingress](decoded(t, baseProps()))
	ports := map[string]string{}
	for svc, ing := range ings {
		if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "" {
			t.Errorf("%s: rules %+v; without a domain no host", svc, ing.Spec.Rules)
		}
		if _, ok := ing.Annotations["external-dns.alpha.kubernetes.io/hostname"]; ok {
			t.Errorf("%s: ExternalDNS annotation without a domain", svc)
		}
		if ing.Annotations["alb.ingress.kubernetes.io/group.name"] != "ladder" {
			t.Errorf("%s: not in the shared ALB group", svc)
		}
		ports[svc] = ing.Annotations["alb.ingress.kubernetes.io/listen-ports"]
	}
	// One ALB: vote on 80, result on its own listener.
	if ports["vote"] != `[{"HTTP":80}]` || ports["result"] != `[{"HTTP":8081}]` {
		t.Errorf("listen ports %v", ports)
	}
}

func TestInvalidProps(t *testing.T) {
	for name, mutate := range map[string]func(*AppProps){
		"no redis host":       func(p *AppProps) { p.RedisHost = "" },
		"no database secret":  func(p *AppProps) { p.DatabaseSecretArn = "" },
		"one host only":       func(p *AppProps) { p.VoteHost = "vote.example.com" },
		"certificate no host": func(p *AppProps) { p.CertificateArn = certArn },
		"scheme in endpoint":  func(p *AppProps) { p.OpenSearchEndpoint = "https://" + search },
		"min above max":       func(p *AppProps) { p.Worker = Sizing{MinReplicas: 5, MaxReplicas: 3} },
		"request above limit": func(p *AppProps) { p.Result = Sizing{CPURequest: "2", CPULimit: "1"} },
		"bad quantity":        func(p *AppProps) { p.Vote = Sizing{MemoryLimit: "lots"} },
		"shared namespace":    func(p *AppProps) { p.LoggingNamespace = "ladder" },
	} {
		p := baseProps()
		mutate(&p)
		if _, err := Manifests(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDynamoDBStore(t *testing.T) {
	objs := decoded(t, tier4Props())
	deps := all[*appsv1.Deployment](objs)
	const redisURL = "rediss://" + redis + ":6379/0"
	common := map[string]string{"OPTION_A": "Cats", "OPTION_B": "Dogs", "SHUTDOWN_TIMEOUT": "20s"}
	dynamo := map[string]string{"STORE": "dynamodb", "DYNAMODB_TABLE": table, "AWS_REGION": "eu-west-1"}
	// The exact environment: the names services/internal/config reads, and
	// nothing of PostgreSQL's. Vote (queue mode) never touches the store.
	want := map[string][]map[string]string{
		"vote":   {common, {"PORT": "8080", "VOTE_MODE": "queue", "REDIS_URL": redisURL, "REDIS_PASSWORD_FILE": "/run/secrets/redis-password"}},
		"worker": {common, dynamo, {"PORT": "8082", "REDIS_URL": redisURL, "REDIS_PASSWORD_FILE": "/run/secrets/redis-password"}},
		"result": {common, dynamo, {"PORT": "8081"}},
	}
	for svc, parts := range want {
		exact := map[string]string{}
		for _, part := range parts {
			for k, v := range part {
				exact[k] = v
			}
		}
		if got := envOf(deps[svc]); !maps.Equal(got, exact) {
			t.Errorf("%s env %v, want exactly %v", svc, got, exact)
		}
	}
	ms, _ := Manifests(tier4Props())
	b, _ := json.Marshal(ms)
	for _, bad := range []string{"DATABASE_", "database.json", "postgres"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("DynamoDB mode renders %q", bad)
		}
	}

	// Worker and vote mount only the Redis token; result, with nothing
	// to mount, has no SecretProviderClass and no CSI volume at all.
	spcs := all[*SecretProviderClass](objs)
	for svc, arns := range map[string][]string{"vote": {redisArn}, "worker": {redisArn}} {
		var objects []ascpObject
		if spcs[svc+"-secrets"] == nil {
			t.Fatalf("no SecretProviderClass for %s", svc)
		}
		if err := yaml.UnmarshalStrict([]byte(spcs[svc+"-secrets"].Spec.Parameters["objects"]), &objects); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range objects {
			got = append(got, o.ObjectName)
		}
		if !slices.Equal(got, arns) {
			t.Errorf("%s mounts %v, want exactly %v", svc, got, arns)
		}
	}
	if len(spcs) != 2 || spcs["result-secrets"] != nil {
		t.Errorf("SecretProviderClasses %v: want vote's and worker's only", slices.Collect(maps.Keys(spcs)))
	}
	ps := deps["result"].Spec.Template.Spec
	for _, v := range ps.Volumes {
		if v.CSI != nil || v.Name == "secrets" {
			t.Errorf("result: volume %+v; it has no secrets", v)
		}
	}
	for _, m := range ps.Containers[0].VolumeMounts {
		if m.MountPath == "/run/secrets" {
			t.Errorf("result: mount %+v; it has no secrets", m)
		}
	}
	if len(ps.Volumes) != 1 || ps.Volumes[0].EmptyDir == nil || len(ps.Containers[0].VolumeMounts) != 1 || ps.Containers[0].VolumeMounts[0].MountPath != "/tmp" {
		t.Errorf("result: volumes %+v mounts %+v: want the /tmp scratch dir only", ps.Volumes, ps.Containers[0].VolumeMounts)
	}
	if !slices.ContainsFunc(deps["worker"].Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.CSI != nil && v.CSI.VolumeAttributes["secretProviderClass"] == "worker-secrets"
	}) {
		t.Errorf("worker: no CSI volume for its Redis token")
	}
	if _, err := secretProviderClass(tier4Props().withDefaults(), "result", secretsFor{}); err == nil {
		t.Error("an empty SecretProviderClass was built")
	}
}

func TestTargetGroupBindings(t *testing.T) {
	p := baseProps()
	p.TargetGroups = &TargetGroupArns{Vote: voteTG, Result: resultTG}
	ms, err := Manifests(p)
	if err != nil {
		t.Fatal(err)
	}
	objs := decoded(t, p)
	if ings := all[*networkingv1.Ingress](objs); len(ings) != 0 {
		t.Errorf("Ingresses %v with TargetGroups: the ALB is CloudFormation's", slices.Collect(maps.Keys(ings)))
	}
	tgbs := all[*TargetGroupBinding](objs)
	svcs := all[*corev1.Service](objs)
	if len(tgbs) != 2 {
		t.Errorf("%d TargetGroupBindings, want vote and result", len(tgbs))
	}
	for svc, arn := range map[string]string{"vote": voteTG, "result": resultTG} {
		b := tgbs[svc]
		if b == nil {
			t.Fatalf("no TargetGroupBinding %s", svc)
		}
		if b.APIVersion != "elbv2.k8s.aws/v1beta1" || b.Namespace != "ladder" || b.Spec.TargetGroupARN != arn || b.Spec.TargetType != "ip" {
			t.Errorf("%s: %+v", svc, b)
		}
		// The binding names the Service and its port (the controller
		// registers the pods at that port's targetPort).
		if s := svcs[svc]; s == nil || b.Spec.ServiceRef.Name != s.Name || b.Spec.ServiceRef.Port.IntValue() != int(s.Spec.Ports[0].Port) {
			t.Errorf("%s: serviceRef %+v, Service %+v", svc, b.Spec.ServiceRef, s)
		}
	}
	// No spec.networking: the rule from the ALB to the pods is made in
	// CloudFormation, not by the controller.
	for _, m := range ms {
		if m["kind"] == "TargetGroupBinding" {
			if _, ok := m["spec"].(map[string]any)["networking"]; ok {
				t.Errorf("%v sets spec.networking", m["metadata"])
			}
		}
	}
	// The controller injects readiness gates for TargetGroupBinding pods too.
	if ns := all[*corev1.Namespace](objs)["ladder"]; ns.Labels["elbv2.k8s.aws/pod-readiness-gate-inject"] != "enabled" {
		t.Errorf("namespace labels %v", ns.Labels)
	}
}

func TestInvalidTier4Props(t *testing.T) {
	if _, err := Manifests(tier4Props()); err != nil {
		t.Fatalf("tier4Props: %v", err)
	}
	// Each mutation of a valid Tier 4 shape fails with an error naming the field.
	for name, c := range map[string]struct {
		mutate func(*AppProps)
		want   string
	}{
		"unknown store":             {func(p *AppProps) { p.Store = "mysql" }, `Store must be`},
		"dynamodb without table":    {func(p *AppProps) { p.DynamoDBTable = "" }, "DynamoDBTable is required"},
		"dynamodb with db secret":   {func(p *AppProps) { p.DatabaseSecretArn = dbArn }, "DatabaseSecretArn must be empty"},
		"dynamodb with reader":      {func(p *AppProps) { p.ReaderHost = reader }, "ReaderHost must be empty"},
		"dynamodb with db name":     {func(p *AppProps) { p.DatabaseName = "votes" }, "DatabaseName must be empty"},
		"postgres with table":       {func(p *AppProps) { p.Store, p.DatabaseSecretArn = StorePostgres, dbArn }, "DynamoDBTable and DefaultWriterRegion are for"},
		"postgres without secret":   {func(p *AppProps) { p.Store, p.DynamoDBTable = "", "" }, "DatabaseSecretArn is required"},
		"target groups with hosts":  {func(p *AppProps) { p.VoteHost, p.ResultHost = "vote.example.com", "result.example.com" }, "must be empty with TargetGroups"},
		"target groups with cert":   {func(p *AppProps) { p.CertificateArn = certArn }, "must be empty with TargetGroups"},
		"target group ARN missing":  {func(p *AppProps) { p.TargetGroups = &TargetGroupArns{Vote: voteTG} }, "TargetGroups.Result is required"},
		"target group ARN missing2": {func(p *AppProps) { p.TargetGroups = &TargetGroupArns{Result: resultTG} }, "TargetGroups.Vote is required"},
	} {
		p := tier4Props()
		c.mutate(&p)
		_, err := Manifests(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestFluentBit(t *testing.T) {
	objs := decoded(t, baseProps())
	ds := all[*appsv1.DaemonSet](objs)["fluent-bit"]
	if ds == nil || ds.Namespace != "ladder-logging" {
		t.Fatalf("DaemonSet fluent-bit: %+v", ds)
	}
	ps := ds.Spec.Template.Spec
	c := ps.Containers[0]
	if !strings.HasPrefix(c.Image, "public.ecr.aws/aws-observability/aws-for-fluent-bit:") || strings.HasSuffix(c.Image, ":latest") || strings.HasSuffix(c.Image, ":stable") {
		t.Errorf("image %s: pinned, from public ECR", c.Image)
	}
	if len(ps.Tolerations) != 1 || ps.Tolerations[0].Operator != corev1.TolerationOpExists || ps.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v: must run on every node", ps.Tolerations)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	if c.SecurityContext == nil || !*c.SecurityContext.ReadOnlyRootFilesystem || *c.SecurityContext.AllowPrivilegeEscalation ||
		!slices.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("securityContext %+v", c.SecurityContext)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	for _, v := range ps.Volumes {
		if v.HostPath != nil && v.HostPath.Path == "/var/log" && !mounts[v.Name].ReadOnly {
			t.Errorf("/var/log mounted writable")
		}
	}
	if ps.ServiceAccountName != "fluent-bit" {
		t.Errorf("service account %s", ps.ServiceAccountName)
	}
	// RBAC: read pods and namespaces, nothing else.
	cr := all[*rbacv1.ClusterRole](objs)["ladder-fluent-bit"]
	if cr == nil || len(cr.Rules) != 1 || !slices.Equal(cr.Rules[0].Verbs, []string{"get", "list", "watch"}) ||
		!slices.Equal(cr.Rules[0].Resources, []string{"pods", "namespaces"}) {
		t.Errorf("ClusterRole %+v", cr)
	}
	crb := all[*rbacv1.ClusterRoleBinding](objs)["ladder-fluent-bit"]
	if crb == nil || crb.RoleRef.Name != "ladder-fluent-bit" || len(crb.Subjects) != 1 ||
		crb.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: "fluent-bit", Namespace: "ladder-logging"}) {
		t.Errorf("ClusterRoleBinding %+v", crb)
	}
	// The config: tail container logs, CRI, JSON merge, metadata, OpenSearch.
	cm := all[*corev1.ConfigMap](objs)["fluent-bit"]
	conf := cm.Data["fluent-bit.conf"]
	settings := map[string][]string{}
	for _, line := range strings.Split(conf, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			settings[f[0]] = append(settings[f[0]], f[1])
		}
	}
	for k, v := range map[string]string{
		"Path": "/var/log/containers/*.log", "multiline.parser": "cri", "Merge_Log": "On",
		"Exclude_Path": "/var/log/containers/fluent-bit-*_ladder-logging_*.log",
		"Host":         search, "AWS_Auth": "On", "AWS_Region": "eu-west-1", "tls": "On", "tls.verify": "On",
		"Logstash_Format": "On", "Logstash_Prefix": "ladder-tier3", "Suppress_Type_Name": "On",
	} {
		if !slices.Contains(settings[k], v) {
			t.Errorf("fluent-bit.conf: %s is %v, want %s", k, settings[k], v)
		}
	}
	if !slices.Contains(settings["Name"], "kubernetes") || !slices.Contains(settings["Name"], "opensearch") || !slices.Contains(settings["Name"], "tail") {
		t.Errorf("fluent-bit.conf plugins %v", settings["Name"])
	}
	// The container reads the config it is given.
	if !slices.Contains(c.Command, "/fluent-bit/config/fluent-bit.conf") || mounts["config"].MountPath != "/fluent-bit/config" {
		t.Errorf("command %v, config mount %+v", c.Command, mounts["config"])
	}
}

func TestWithDefaultsNames(t *testing.T) {
	p := AppProps{}.WithDefaults()
	if p.Namespace != "ladder" || p.LoggingNamespace != "ladder-logging" || p.ServiceAccounts != (ServiceAccounts{"vote", "worker", "result", "fluent-bit"}) {
		t.Errorf("defaults %+v", p)
	}
}

// With a CDN for the assets, the two page services (and only they) are
// told where it is; without one nothing changes.
func TestStaticBaseURL(t *testing.T) {
	const cdn = "https://d111111abcdef8.cloudfront.net"
	p := tier4Props()
	p.StaticBaseURL = cdn
	deps := all[*appsv1.Deployment](decoded(t, p))
	for svc, want := range map[string]string{"vote": cdn, "result": cdn, "worker": ""} {
		if got := envOf(deps[svc])["STATIC_BASE_URL"]; got != want {
			t.Errorf("%s STATIC_BASE_URL = %q, want %q", svc, got, want)
		}
	}
	for svc, d := range all[*appsv1.Deployment](decoded(t, tier4Props())) {
		if _, ok := envOf(d)["STATIC_BASE_URL"]; ok {
			t.Errorf("%s has STATIC_BASE_URL without a CDN", svc)
		}
	}
}

// The controller refuses to change a binding's target group: a new target
// group comes with a new revision, so the binding gets a new name (and is
// replaced, not updated); its Service stays the same.
func TestTargetGroupBindingRevisionRenames(t *testing.T) {
	p := baseProps()
	p.TargetGroups = &TargetGroupArns{Vote: voteTG, Result: resultTG, Revision: "0a1b2c3d"}
	var names []string
	for _, o := range decoded(t, p) {
		if b, ok := o.(*TargetGroupBinding); ok {
			names = append(names, b.Name+"->"+b.Spec.ServiceRef.Name)
		}
	}
	slices.Sort(names)
	if got := strings.Join(names, ","); got != "result-0a1b2c3d->result,vote-0a1b2c3d->vote" {
		t.Errorf("bindings %s", got)
	}
}

// With a default writer region the workers (and only they) are fenced by
// the table's writer flag; without one nothing changes.
func TestDefaultWriterRegion(t *testing.T) {
	p := tier4Props()
	p.DefaultWriterRegion = "us-west-2"
	deps := all[*appsv1.Deployment](decoded(t, p))
	for svc, want := range map[string]string{"worker": "us-west-2", "vote": "", "result": ""} {
		if got := envOf(deps[svc])["DYNAMODB_DEFAULT_WRITER_REGION"]; got != want {
			t.Errorf("%s DYNAMODB_DEFAULT_WRITER_REGION = %q, want %q", svc, got, want)
		}
	}
	pg := baseProps()
	pg.DefaultWriterRegion = "us-west-2"
	if _, err := Manifests(pg); err == nil || !strings.Contains(err.Error(), "DefaultWriterRegion") {
		t.Errorf("postgres with a writer region: %v", err)
	}
}
