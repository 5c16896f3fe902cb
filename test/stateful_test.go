package test

import (
	"sort"
	"strings"
	"testing"
)

// statefulTypes hold data (or the keys to it). CloudFormation replaces a
// resource whose logical id changes: for these that means a new, empty
// volume, database or bucket, so their ids are pinned below.
var statefulTypes = map[string]bool{
	"AWS::EC2::Volume":                   true,
	"AWS::RDS::DBCluster":                true,
	"AWS::RDS::DBInstance":               true,
	"AWS::S3::Bucket":                    true,
	"AWS::DynamoDB::Table":               true,
	"AWS::DynamoDB::GlobalTable":         true,
	"AWS::ElastiCache::ReplicationGroup": true,
	"AWS::OpenSearchService::Domain":     true,
	"AWS::Backup::BackupVault":           true,
	"AWS::KMS::Key":                      true,
	"AWS::Logs::LogGroup":                true,
	"AWS::SecretsManager::Secret":        true,
}

// pinnedStatefulIDs is every stateful resource of every stack, by logical
// id. If this test fails after a refactor, the refactor renamed a construct
// holding data: keep the old id (e.g. with overrideLogicalId) instead of
// editing this list, unless losing that data is the intent.
var pinnedStatefulIDs = map[string][]string{
	tier1: {
		"AlarmsKey3C2381B3",
		"AppLogsC5DF83A6",
		"BackupKey570ED138",
		"BackupVaultADF21B19",
		"DataVolume175940C2",
		"DatabasePassword49A8070F",
		"HostLogs22B13AD2",
		"NetworkFlowLogs2BEC3212",
	},
	tier2: {
		"AWS679f53fac002430cb0da5b7982bd2287LogGroup449FB7C2", // the prefix-list lookup function's logs
		"AlarmsKey3C2381B3",
		"AppLogsC5DF83A6",
		"CanaryHandlerLogs153A1859",
		"CdnAssetDeployLogs71802A99",
		"CdnLogsA23F7455",
		"CdnStatic420F4635",
		"DatabaseCluster5B53A178",
		"DatabaseClusterReader1D8B76102",
		"DatabaseClusterWriterD43085C6",
		"DatabaseKey5E5D9547",
		"DbMigrateHandlerLogsB1E7CE85",
		"DbMigrateProviderLogs02CDD8CD",
		"HostLogs22B13AD2",
		"LadderTier2DatabaseClusterSecretA58056343fdaad7efa858a3daf9490cf0a702aeb",
		"LoadBalancerLogsC31A6119",
		"NetworkFlowLogs2BEC3212",
		"OriginSecret5DDC59F1",
	},
	tier2Edge:       {"WafLogsF9F75746"},
	tier2EdgeAlarms: {"AlarmsKey3C2381B3"},
	tier3: append([]string{
		"AlarmsKey3C2381B3",
		"DatabaseCluster5B53A178",
		"DatabaseClusterReader1D8B76102",
		"DatabaseClusterWriterD43085C6",
		"DatabaseKey5E5D9547",
		"DbMigrateHandlerLogsB1E7CE85",
		"DbMigrateProviderLogs02CDD8CD",
		"LadderTier3DatabaseClusterSecret74E10C8E3fdaad7efa858a3daf9490cf0a702aeb",
	}, eksAppStatefulIDs...),
	tier4: append([]string{
		"AlarmsKey3C2381B3",
		"BackupKey570ED138",
		"BackupVaultADF21B19",
		"StaticAssetsAssetDeployLogsD5E35E85",
		"StaticAssetsLogsC46B3644",
		"StaticAssetsStatic3EA708D8",
		"VotesKeyA6E82C74",
		"VotesTable153BC665",
	}, tier4AppStatefulIDs...),
	tier4DR:           tier4DRDataIDs,
	tier4HealthAlarms: {"AlarmsKey3C2381B3"},
}

// tier4DRDataIDs are what the recovery region holds in either mode.
var tier4DRDataIDs = []string{
	"AlarmsKey3C2381B3",
	"BackupCopiesKey546AD890",
	"BackupCopiesVaultEFC33BA4",
	"LoadBalancerLogReplicaBucket84A8354F",
	"LoadBalancerLogReplicaKey6654C0D2",
	"StaticAssetReplicaBucket04B8FE67",
	"StaticAssetReplicaKey0D77AE09",
	"TableReplicaKeyEC2B5404",
}

// eksAppStatefulIDs are the app on EKS's (NewEksVoteApp), in Tier 3 and in
// each Tier 4 region that runs it.
var eksAppStatefulIDs = []string{
	"AWS679f53fac002430cb0da5b7982bd2287LogGroup449FB7C2", // the node group lookup's (and log domain's) function logs
	"CacheAuthToken04672416",
	"CacheEngineLogFEAEB291",
	"CacheKeyCDF9DE27",
	"CacheReplicationGroupBFE59FF3",
	"CacheSlowLog43E55961",
	"EksClusterKubectlProviderHandlerLogGroup4E3D8320",
	"EksClusterKubectlProviderframeworkonEventLogGroup018F2467",
	"EksControlPlaneLogsDB7AEF19",
	"EksSecretsKey89C78FFD",
	"LogSearchAppLogs8B343ABF",
	"LogSearchDomain554D1947",
	"LogSearchKeyF2A9CC23",
	"LogSearchLifecycleLogs39C2539C",
	"LogSearchProviderLogsBE57064A",
	"LogSearchSlowIndexLogsAAA093FF",
	"LogSearchSlowSearchLogs864B2E4C",
	"NetworkFlowLogs2BEC3212",
}

// tier4AppStatefulIDs are a Tier 4 region's that runs the app: the app on
// EKS and its entry (access logs, WAF logs).
var tier4AppStatefulIDs = append([]string{"EntryLogs2EBD49F9", "EntryWafLogsBA81DDCA"}, eksAppStatefulIDs...)

// pinnedWarmIDs are the stacks whose stateful ids differ with the full
// context: a warm recovery region runs the app too.
var pinnedWarmIDs = map[string][]string{
	tier4DR: append(append([]string{}, tier4DRDataIDs...), tier4AppStatefulIDs...),
}

func TestStatefulLogicalIDsNeverChange(t *testing.T) {
	for _, set := range []*synthesized{defaults, full} {
		for _, stack := range set.names() {
			var got []string
			res, _ := set.templates[stack]["Resources"].(map[string]any)
			for id, r := range res {
				if statefulTypes[r.(map[string]any)["Type"].(string)] {
					got = append(got, id)
				}
			}
			sort.Strings(got)
			want, ok := pinnedStatefulIDs[stack]
			if warm, isWarm := pinnedWarmIDs[stack]; isWarm && set == full {
				want = warm
			}
			want = sorted(want)
			if !ok {
				t.Errorf("stack %s has no pinned stateful ids; add them: %q", stack, got)
				continue
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s stateful logical ids changed:\n got  %q\n want %q\nA changed id replaces the resource on deploy and loses its data.", stack, got, want)
			}
		}
	}
}

// Deleting a stack (or replacing a resource) never deletes data: every
// stateful resource is retained or snapshotted.
func TestStatefulResourcesAreRetainedOrSnapshotted(t *testing.T) {
	for _, stack := range defaults.names() {
		res, _ := defaults.templates[stack]["Resources"].(map[string]any)
		for id, raw := range res {
			r := raw.(map[string]any)
			if !statefulTypes[r["Type"].(string)] || auroraMember(r) {
				continue
			}
			for _, policy := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
				if p := r[policy]; p != "Retain" && p != "Snapshot" {
					t.Errorf("%s: %s %s has %s %v, want Retain or Snapshot", stack, r["Type"], id, policy, p)
				}
			}
		}
	}
}

// auroraMember reports an instance of an Aurora cluster. It holds no data
// of its own (the cluster's storage does, and the cluster is snapshotted),
// and CloudFormation cannot snapshot it alone; a retained member would even
// keep its cluster from being deleted. Its logical id is pinned all the same:
// replacing the writer is a failover.
func auroraMember(r map[string]any) bool {
	p, _ := r["Properties"].(map[string]any)
	_, inCluster := p["DBClusterIdentifier"]
	return r["Type"] == "AWS::RDS::DBInstance" && inCluster
}

func sorted(v []string) []string {
	out := append([]string(nil), v...)
	sort.Strings(out)
	return out
}
