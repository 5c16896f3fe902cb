// Package config holds the ladder's one typed configuration: defaults in code,
// overridden by cdk.json context or `-c key=value`, validated once before any
// construct is made so that a typo fails synth instead of reaching a deploy.
package config

import (
	"fmt"
	"net"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Rungs that exist in this app, in ladder order. A rung is listed here only
// once its stack is complete, so `-c tier=N` never selects a half-built rung.
var Rungs = []int{1, 2, 3, 4}

// Config is every value a user can set. Field comments name the context key.
type Config struct {
	Rungs []int // tier: "all" (default) or a comma list such as "1" or "1,2"

	Project string // project: stack name prefix, e.g. Ladder -> Ladder-Tier1

	// DomainName and HostedZoneID (domainName, hostedZoneId) are optional
	// and go together: with them each rung gets DNS records in that zone;
	// without them no record is made and outputs show raw endpoints. The zone
	// is referenced by id, never looked up, so synth needs no account.
	DomainName   string
	HostedZoneID string

	Account       string // account: optional; without it synth is account-agnostic
	PrimaryRegion string // primaryRegion
	DRRegion      string // drRegion

	Tier1InstanceType  string // tier1InstanceType: a Graviton (arm64) type
	Tier1DataVolumeGiB int    // tier1DataVolumeGiB: the box's PostgreSQL and Redis volume

	Tier2InstanceType string // tier2InstanceType: a Graviton (arm64) type for the app servers
	Tier2MinCapacity  int    // tier2MinCapacity: at least 2, one per AZ
	Tier2MaxCapacity  int    // tier2MaxCapacity: the scaling ceiling

	// NatGateways (natGateways) is how many NAT gateways the Tier 2 VPC has:
	// 1 is cheaper, one per AZ survives the loss of an AZ's gateway.
	NatGateways int

	// DBInstanceClass (dbInstanceClass) is the Graviton class of each Aurora
	// instance, without the "db." prefix (t4g.medium, r7g.large, ...).
	DBInstanceClass       string
	DBBackupRetentionDays int // dbBackupRetentionDays: Aurora's automated backups, 7 to 35 days

	// DeletionProtection (deletionProtection) guards the load balancer and the
	// database against a `cdk destroy` or a console click.
	DeletionProtection bool

	OptionA, OptionB string // optionA, optionB: the two vote labels

	AlarmEmail string // alarmEmail: optional; alarms go to an SNS topic either way

	// AllowedCIDR (allowedCidr) is who may reach the public endpoints of the
	// rungs that face the internet directly (Tier 1's box).
	AllowedCIDR string

	LogRetentionDays    int // logRetentionDays: CloudWatch Logs retention
	BackupRetentionDays int // backupRetentionDays: daily backups kept this long

	Tier3NodeInstanceType string // tier3NodeInstanceType: a Graviton type for the EKS nodes
	Tier3MinNodes         int    // tier3MinNodes: at least 2, one per AZ
	Tier3MaxNodes         int    // tier3MaxNodes: the node group's ceiling

	// EksPublicAccessCidrs (eksPublicAccessCidrs, a comma list) may reach
	// the Tier 3 cluster's public API endpoint; empty means [allowedCidr].
	// The VPC always uses the private endpoint.
	EksPublicAccessCidrs []string
	// EksAdminRoleArn (eksAdminRoleArn) is an IAM role given cluster-admin
	// by an access entry; optional (see README, Tier 3).
	EksAdminRoleArn string

	RedisNodeType          string // redisNodeType: a Graviton ElastiCache node type (cache.t4g.medium)
	RedisReplicas          int    // redisReplicas: read replicas, the failover targets (1-5)
	OpenSearchInstanceType string // openSearchInstanceType: a Graviton OpenSearch type (m7g.large.search)
	LogSearchRetentionDays int    // logSearchRetentionDays: days a pod log index is kept in OpenSearch

	// Tier4DRMode (tier4DrMode) is how the recovery region runs: "pilot-light"
	// keeps only the data there (table replica, bucket replicas, backup
	// copies) and brings the app up with one `cdk deploy`; "warm" runs the
	// whole app there too, ready to take traffic when Route53 fails over.
	Tier4DRMode string
	// BackupVaultLockDays (backupVaultLockDays) locks Tier 4's backup vaults
	// so no recovery point can be deleted before that many days; 0 is no
	// lock. At most backupRetentionDays, or the copies would be refused.
	BackupVaultLockDays int
}

// Tier 4 recovery-region modes.
const (
	PilotLight = "pilot-light"
	Warm       = "warm"
)

// PublicAccessCidrs is EksPublicAccessCidrs, or allowedCidr when unset.
func (c Config) PublicAccessCidrs() []string {
	if len(c.EksPublicAccessCidrs) > 0 {
		return slices.Clone(c.EksPublicAccessCidrs)
	}
	return []string{c.AllowedCIDR}
}

// Defaults are what a user gets with no context at all.
func Defaults() Config {
	return Config{
		Rungs:              slices.Clone(Rungs),
		Project:            "Ladder",
		PrimaryRegion:      "us-west-2",
		DRRegion:           "us-east-2",
		Tier1InstanceType:  "t4g.small",
		Tier1DataVolumeGiB: 20,
		// Two small app servers in two AZs and the cheapest Graviton Aurora
		// class: the rung's availability at the lowest steady cost.
		Tier2InstanceType:     "t4g.small",
		Tier2MinCapacity:      2,
		Tier2MaxCapacity:      6,
		NatGateways:           1,
		DBInstanceClass:       "t4g.medium",
		DBBackupRetentionDays: 7,
		DeletionProtection:    true,
		OptionA:               "Cats",
		OptionB:               "Dogs",
		AllowedCIDR:           "0.0.0.0/0",
		LogRetentionDays:      30,
		BackupRetentionDays:   14,
		// Two m7g.large nodes (2 vCPU, 8 GiB each) in two AZs hold the app's
		// pods with room for one node's pods to move on an update; a small
		// Graviton Valkey pair and OpenSearch pair for queue and logs.
		Tier3NodeInstanceType:  "m7g.large",
		Tier3MinNodes:          2,
		Tier3MaxNodes:          6,
		RedisNodeType:          "cache.t4g.medium",
		RedisReplicas:          1,
		OpenSearchInstanceType: "m7g.large.search",
		LogSearchRetentionDays: 14,
		// The cheaper mode: the recovery region holds the data, not a
		// second cluster (README, Tier 4: what each costs in recovery time).
		Tier4DRMode: PilotLight,
	}
}

// StackName is the stable, readable name of a rung's stack.
func (c Config) StackName(suffix string) string { return c.Project + "-" + suffix }

// keys maps each context key to the function that applies its raw value.
var keys = map[string]func(c *Config, raw string) error{
	"tier":    func(c *Config, v string) error { return parseRungs(&c.Rungs, v) },
	"project": func(c *Config, v string) error { c.Project = v; return nil },
	"domainName": func(c *Config, v string) error {
		c.DomainName = strings.TrimSuffix(strings.ToLower(v), ".")
		return nil
	},
	"hostedZoneId":        func(c *Config, v string) error { c.HostedZoneID = v; return nil },
	"account":             func(c *Config, v string) error { c.Account = v; return nil },
	"primaryRegion":       func(c *Config, v string) error { c.PrimaryRegion = v; return nil },
	"drRegion":            func(c *Config, v string) error { c.DRRegion = v; return nil },
	"tier1InstanceType":   func(c *Config, v string) error { c.Tier1InstanceType = v; return nil },
	"tier1DataVolumeGiB":  func(c *Config, v string) error { return parseInt(&c.Tier1DataVolumeGiB, v) },
	"optionA":             func(c *Config, v string) error { c.OptionA = v; return nil },
	"optionB":             func(c *Config, v string) error { c.OptionB = v; return nil },
	"alarmEmail":          func(c *Config, v string) error { c.AlarmEmail = v; return nil },
	"allowedCidr":         func(c *Config, v string) error { c.AllowedCIDR = v; return nil },
	"logRetentionDays":    func(c *Config, v string) error { return parseInt(&c.LogRetentionDays, v) },
	"backupRetentionDays": func(c *Config, v string) error { return parseInt(&c.BackupRetentionDays, v) },
	"tier2InstanceType":   func(c *Config, v string) error { c.Tier2InstanceType = v; return nil },
	"tier2MinCapacity":    func(c *Config, v string) error { return parseInt(&c.Tier2MinCapacity, v) },
	"tier2MaxCapacity":    func(c *Config, v string) error { return parseInt(&c.Tier2MaxCapacity, v) },
	"natGateways":         func(c *Config, v string) error { return parseInt(&c.NatGateways, v) },
	"dbInstanceClass": func(c *Config, v string) error {
		c.DBInstanceClass = strings.TrimPrefix(strings.ToLower(v), "db.")
		return nil
	},
	"dbBackupRetentionDays": func(c *Config, v string) error { return parseInt(&c.DBBackupRetentionDays, v) },
	"deletionProtection":    func(c *Config, v string) error { return parseBool(&c.DeletionProtection, v) },
	"tier3NodeInstanceType": func(c *Config, v string) error { c.Tier3NodeInstanceType = v; return nil },
	"tier3MinNodes":         func(c *Config, v string) error { return parseInt(&c.Tier3MinNodes, v) },
	"tier3MaxNodes":         func(c *Config, v string) error { return parseInt(&c.Tier3MaxNodes, v) },
	"eksPublicAccessCidrs": func(c *Config, v string) error {
		c.EksPublicAccessCidrs = nil
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				c.EksPublicAccessCidrs = append(c.EksPublicAccessCidrs, part)
			}
		}
		return nil
	},
	"eksAdminRoleArn":        func(c *Config, v string) error { c.EksAdminRoleArn = v; return nil },
	"redisNodeType":          func(c *Config, v string) error { c.RedisNodeType = strings.ToLower(v); return nil },
	"redisReplicas":          func(c *Config, v string) error { return parseInt(&c.RedisReplicas, v) },
	"openSearchInstanceType": func(c *Config, v string) error { c.OpenSearchInstanceType = strings.ToLower(v); return nil },
	"logSearchRetentionDays": func(c *Config, v string) error { return parseInt(&c.LogSearchRetentionDays, v) },
	"tier4DrMode":            func(c *Config, v string) error { c.Tier4DRMode = strings.ToLower(v); return nil },
	"backupVaultLockDays":    func(c *Config, v string) error { return parseInt(&c.BackupVaultLockDays, v) },
}

// Keys lists the context keys this app reads, sorted.
func Keys() []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cliKeys are context keys the CDK CLI itself may set without a prefix.
var cliKeys = []string{"acknowledged-issue-numbers", "cli-telemetry"}

// FromContext builds the Config from the app's whole context (cdk.json
// entries, `-c` flags and the CLI's own keys). Keys with '@' or ':' belong
// to CDK itself (feature flags, lookups, aws:cdk:*) and are not ours.
func FromContext(ctx map[string]any) (Config, error) {
	c := Defaults()
	var errs []string
	names := make([]string, 0, len(ctx))
	for k := range ctx {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if strings.HasPrefix(k, "@") || strings.Contains(k, ":") || slices.Contains(cliKeys, k) {
			continue
		}
		apply, ok := keys[k]
		if !ok {
			msg := fmt.Sprintf("%s: unknown context key", k)
			if near := nearest(k, Keys()); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			errs = append(errs, msg+"; known keys: "+strings.Join(Keys(), ", "))
			continue
		}
		raw, err := scalar(ctx[k])
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		if err := apply(&c, strings.TrimSpace(raw)); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
		}
	}
	// Values that failed to parse kept their defaults, so validating the rest
	// still reports every other mistake in the same run.
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid Ladder configuration (set with -c key=value or in cdk.json \"context\"):\n  - %s", strings.Join(errs, "\n  - "))
	}
	return c, nil
}

// scalar accepts what cdk.json (JSON types) and -c (strings) can carry.
func scalar(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case float64:
		if t != float64(int64(t)) {
			return "", fmt.Errorf("%v is not a whole number", t)
		}
		return strconv.FormatInt(int64(t), 10), nil
	case bool:
		return strconv.FormatBool(t), nil
	case []any: // cdk.json may list rungs as [1, 2]
		parts := make([]string, 0, len(t))
		for _, e := range t {
			s, err := scalar(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("unsupported value %v (want a string or number)", v)
	}
}

func parseInt(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	*dst = n
	return nil
}

func parseBool(dst *bool, v string) error {
	switch strings.ToLower(v) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return fmt.Errorf("%q is not true or false", v)
	}
	return nil
}

func parseRungs(dst *[]int, v string) error {
	if v == "" || strings.EqualFold(v, "all") {
		*dst = slices.Clone(Rungs)
		return nil
	}
	var out []int
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(part)), "tier")
		n, err := strconv.Atoi(part)
		if err != nil || !slices.Contains(Rungs, n) {
			return fmt.Errorf("unknown rung %q (this app has rungs %s, or \"all\")", part, joinInts(Rungs))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	*dst = out
	return nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

var (
	projectRe  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,19}$`)
	labelRe    = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} .,'&!?-]{0,39}$`)
	domainRe   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	zoneIDRe   = regexp.MustCompile(`^Z[A-Z0-9]{1,31}$`)
	accountRe  = regexp.MustCompile(`^[0-9]{12}$`)
	instanceRe = regexp.MustCompile(`^([a-z]+[0-9]+)([a-z-]*)\.(nano|micro|small|medium|large|[0-9]*xlarge|metal)$`)
	// auroraGravitonRe is the Graviton classes Aurora PostgreSQL offers:
	// burstable t4g (medium, large) and memory-optimized r6g/r7g/r8g.
	auroraGravitonRe = regexp.MustCompile(`^(t4g\.(medium|large)|r[678]g\.(large|([0-9]+)?xlarge))$`)
	// cacheGravitonRe and openSearchGravitonRe: the Graviton node families
	// (a "g" after the generation digit) of ElastiCache and OpenSearch.
	cacheGravitonRe      = regexp.MustCompile(`^cache\.[a-z]+[0-9]+g[a-z]*\.(micro|small|medium|large|[0-9]*xlarge)$`)
	openSearchGravitonRe = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*\.(medium|large|[0-9]*xlarge)\.search$`)
	iamRoleArnRe         = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
)

// maxEksPublicCidrs is EKS's limit on public endpoint CIDR blocks.
const maxEksPublicCidrs = 40

// logRetentions are the only values CloudWatch Logs accepts.
var logRetentions = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

func (c Config) validate() []string {
	var errs []string
	bad := func(key, format string, a ...any) { errs = append(errs, key+": "+fmt.Sprintf(format, a...)) }

	if !projectRe.MatchString(c.Project) {
		bad("project", "%q must start with a letter and hold at most 20 letters, digits or hyphens", c.Project)
	}
	if c.DomainName != "" && (len(c.DomainName) > 200 || !domainRe.MatchString(c.DomainName)) {
		bad("domainName", "%q is not a valid domain name (e.g. ladder.example.com)", c.DomainName)
	}
	if c.HostedZoneID != "" && !zoneIDRe.MatchString(c.HostedZoneID) {
		bad("hostedZoneId", "%q is not a Route53 hosted zone id (e.g. Z0123456789ABCDEFGHIJ)", c.HostedZoneID)
	}
	if (c.DomainName == "") != (c.HostedZoneID == "") {
		if c.DomainName == "" {
			bad("domainName", "is required when hostedZoneId is set: records are named under it")
		} else {
			bad("hostedZoneId", "is required when domainName is set: the zone is referenced by id, never looked up")
		}
	}
	if c.Account != "" && !accountRe.MatchString(c.Account) {
		bad("account", "%q is not a 12-digit AWS account id", c.Account)
	}
	for _, r := range []struct{ key, val string }{{"primaryRegion", c.PrimaryRegion}, {"drRegion", c.DRRegion}} {
		if !slices.Contains(Regions, r.val) {
			msg := fmt.Sprintf("%q is not an AWS region", r.val)
			if near := nearest(r.val, Regions); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			bad(r.key, "%s", msg)
		}
	}
	if c.PrimaryRegion == c.DRRegion {
		bad("drRegion", "must differ from primaryRegion (%s): the DR copy has to survive a regional outage", c.PrimaryRegion)
	}
	if err := graviton(c.Tier1InstanceType); err != nil {
		bad("tier1InstanceType", "%v", err)
	}
	if err := graviton(c.Tier2InstanceType); err != nil {
		bad("tier2InstanceType", "%v", err)
	}
	if c.Tier2MinCapacity < 2 || c.Tier2MinCapacity > 100 {
		bad("tier2MinCapacity", "%d must be between 2 and 100: two instances in two AZs is what makes Tier 2 survive losing one", c.Tier2MinCapacity)
	}
	if c.Tier2MaxCapacity <= c.Tier2MinCapacity || c.Tier2MaxCapacity > 100 {
		// A rolling update keeps tier2MinCapacity in service and starts the
		// new instance beside them, so the group needs room for one more.
		bad("tier2MaxCapacity", "%d must be above tier2MinCapacity (%d), for the extra instance of a rolling update, and at most 100", c.Tier2MaxCapacity, c.Tier2MinCapacity)
	}
	if c.NatGateways < 1 || c.NatGateways > 3 {
		bad("natGateways", "%d must be 1, 2 or 3 (1 is cheapest; one per AZ survives losing an AZ)", c.NatGateways)
	} else if c.NatGateways == 3 && c.Account == "" {
		// Without an account the template is environment-agnostic and CDK
		// can spread the VPC over two AZs only, so a third gateway has no AZ.
		bad("natGateways", "3 needs account set: an environment-agnostic stack spans two AZs only")
	}
	if !auroraGravitonRe.MatchString(c.DBInstanceClass) {
		bad("dbInstanceClass", "%q is not a Graviton Aurora PostgreSQL class (t4g.medium, t4g.large, r6g/r7g/r8g.large, .xlarge, .2xlarge, ...)", c.DBInstanceClass)
	}
	if c.DBBackupRetentionDays < 7 || c.DBBackupRetentionDays > 35 {
		bad("dbBackupRetentionDays", "%d must be between 7 and 35 (Aurora keeps automated backups at most 35 days)", c.DBBackupRetentionDays)
	}
	if c.Tier1DataVolumeGiB < 8 || c.Tier1DataVolumeGiB > 16384 {
		bad("tier1DataVolumeGiB", "%d must be between 8 and 16384 (GiB of gp3)", c.Tier1DataVolumeGiB)
	}
	for _, o := range []struct{ key, val string }{{"optionA", c.OptionA}, {"optionB", c.OptionB}} {
		if !labelRe.MatchString(o.val) {
			bad(o.key, "%q must be 1-40 letters, digits, spaces or simple punctuation", o.val)
		}
	}
	if c.OptionA == c.OptionB {
		bad("optionB", "must differ from optionA (both are %q)", c.OptionA)
	}
	if c.AlarmEmail != "" {
		if a, err := mail.ParseAddress(c.AlarmEmail); err != nil || a.Address != c.AlarmEmail {
			bad("alarmEmail", "%q is not a plain e-mail address (e.g. ops@example.com)", c.AlarmEmail)
		}
	}
	if _, n, err := net.ParseCIDR(c.AllowedCIDR); err != nil || n.IP.To4() == nil {
		bad("allowedCidr", "%q is not an IPv4 CIDR block (e.g. 203.0.113.0/24 or 0.0.0.0/0)", c.AllowedCIDR)
	} else if n.String() != c.AllowedCIDR {
		bad("allowedCidr", "%q has host bits set; did you mean %q?", c.AllowedCIDR, n.String())
	}
	if !slices.Contains(logRetentions, c.LogRetentionDays) {
		bad("logRetentionDays", "%d is not a CloudWatch Logs retention; use one of %s", c.LogRetentionDays, joinInts(logRetentions))
	}
	if c.BackupRetentionDays < 1 || c.BackupRetentionDays > 35*365 {
		bad("backupRetentionDays", "%d must be between 1 and %d", c.BackupRetentionDays, 35*365)
	}
	errs = append(errs, c.validateTier3()...)
	errs = append(errs, c.validateTier4()...)
	return errs
}

func (c Config) validateTier4() []string {
	var errs []string
	bad := func(key, format string, a ...any) { errs = append(errs, key+": "+fmt.Sprintf(format, a...)) }
	if c.Tier4DRMode != PilotLight && c.Tier4DRMode != Warm {
		bad("tier4DrMode", "%q must be %q (data only in the recovery region) or %q (the app runs there too)", c.Tier4DRMode, PilotLight, Warm)
	}
	if c.BackupVaultLockDays < 0 || c.BackupVaultLockDays > c.BackupRetentionDays {
		bad("backupVaultLockDays", "%d must be between 0 (no lock) and backupRetentionDays (%d): a locked vault refuses recovery points that expire sooner", c.BackupVaultLockDays, c.BackupRetentionDays)
	}
	return errs
}

func (c Config) validateTier3() []string {
	var errs []string
	bad := func(key, format string, a ...any) { errs = append(errs, key+": "+fmt.Sprintf(format, a...)) }
	if err := graviton(c.Tier3NodeInstanceType); err != nil {
		bad("tier3NodeInstanceType", "%v", err)
	}
	if c.Tier3MinNodes < 2 || c.Tier3MinNodes > 100 {
		bad("tier3MinNodes", "%d must be between 2 and 100: a node in each of two AZs is what lets Tier 3 lose one", c.Tier3MinNodes)
	}
	if c.Tier3MaxNodes < c.Tier3MinNodes || c.Tier3MaxNodes > 100 {
		bad("tier3MaxNodes", "%d must be at least tier3MinNodes (%d) and at most 100", c.Tier3MaxNodes, c.Tier3MinNodes)
	}
	if len(c.EksPublicAccessCidrs) > maxEksPublicCidrs {
		bad("eksPublicAccessCidrs", "%d blocks; EKS accepts at most %d", len(c.EksPublicAccessCidrs), maxEksPublicCidrs)
	}
	for _, cidr := range c.EksPublicAccessCidrs {
		if _, n, err := net.ParseCIDR(cidr); err != nil || n.IP.To4() == nil {
			bad("eksPublicAccessCidrs", "%q is not an IPv4 CIDR block (a comma list such as 203.0.113.0/24,198.51.100.7/32)", cidr)
		} else if n.String() != cidr {
			bad("eksPublicAccessCidrs", "%q has host bits set; did you mean %q?", cidr, n.String())
		}
	}
	if c.EksAdminRoleArn != "" && !iamRoleArnRe.MatchString(c.EksAdminRoleArn) {
		bad("eksAdminRoleArn", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/Name)", c.EksAdminRoleArn)
	}
	if !cacheGravitonRe.MatchString(c.RedisNodeType) {
		bad("redisNodeType", "%q is not a Graviton ElastiCache node type (cache.t4g.medium, cache.r7g.large, ...)", c.RedisNodeType)
	}
	if c.RedisReplicas < 1 || c.RedisReplicas > 5 {
		bad("redisReplicas", "%d must be between 1 and 5: automatic failover needs a replica in another AZ", c.RedisReplicas)
	}
	if !openSearchGravitonRe.MatchString(c.OpenSearchInstanceType) {
		bad("openSearchInstanceType", "%q is not a Graviton OpenSearch instance type (m7g.large.search, r7g.large.search, ...)", c.OpenSearchInstanceType)
	}
	if c.LogSearchRetentionDays < 1 || c.LogSearchRetentionDays > 3650 {
		bad("logSearchRetentionDays", "%d must be between 1 and 3650 days", c.LogSearchRetentionDays)
	}
	return errs
}

// graviton accepts arm64 instance types only: every rung runs arm64 images
// and the arm64 Amazon Linux 2023 AMI, so an x86 type would fail at boot.
func graviton(t string) error {
	m := instanceRe.FindStringSubmatch(t)
	if m == nil {
		return fmt.Errorf("%q is not an EC2 instance type (e.g. t4g.small)", t)
	}
	if !strings.HasPrefix(m[2], "g") {
		return fmt.Errorf("%q is not a Graviton (arm64) type; the images are arm64 (e.g. t4g.small, m7g.large)", t)
	}
	return nil
}

// Regions are the AWS commercial regions a ladder can be deployed to.
var Regions = []string{
	"us-east-1", "us-east-2", "us-west-1", "us-west-2",
	"af-south-1", "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2",
	"eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-south-2", "eu-north-1",
	"il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
}

// nearest returns the candidate within edit distance 3 of s, if any, so a
// typo gets a suggestion rather than only a refusal.
func nearest(s string, candidates []string) string {
	best, bestD := "", 4
	for _, c := range candidates {
		if d := distance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
