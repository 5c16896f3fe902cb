package hostsetup

import (
	"strings"
	"testing"
)

// The app-units block is the one place every rung's container hardening is
// written; a rung only chooses its dependencies, mounts and services.
func TestAppUnitsRenderEachServiceHardened(t *testing.T) {
	tmpl := Parse("test", `{{template "app-units" .}}`)
	out := Render(tmpl, Apps{
		Region: "eu-west-1", AppUID: AppUID, AppLogGroup: "app-logs",
		Requires: []string{"ladder-secrets.service"},
		After:    []string{"postgresql.service"},
		Services: []Service{
			{Name: "vote", Image: "img:1", Env: []string{"PORT=8080", "X=y"},
				Mounts: []Mount{{Source: "/run/ladder/a", Target: "/run/secrets/a"}, {Source: "/etc/ladder/b", Target: "/run/secrets/b"}}},
			{Name: "other", Image: "img:2"},
		},
	})
	for _, want := range []string{
		"cat >/etc/ladder/vote.env <<'LADDER_EOF'\nPORT=8080\nX=y\nLADDER_EOF",
		"Requires=docker.service ladder-secrets.service ladder-imds-guard.service\n",
		"After=docker.service ladder-secrets.service ladder-imds-guard.service postgresql.service\n",
		"--user 65532:65532 --read-only --cap-drop ALL --security-opt no-new-privileges",
		"  --volume /run/ladder/a:/run/secrets/a:ro \\\n  --volume /etc/ladder/b:/run/secrets/b:ro \\\n",
		"--log-opt awslogs-group=app-logs --log-opt awslogs-stream=vote",
		"iptables -I OUTPUT -d 169.254.169.254 -m owner --uid-owner 65532 -j REJECT",
		"Wants=ladder-vote.service ladder-other.service \n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("app units lack %q:\n%s", want, out)
		}
	}
	// Mounts are per service: a container gets only the files it was given.
	other := out[strings.Index(out, "ladder-other.service <<"):]
	if strings.Contains(other, "--volume") {
		t.Errorf("the service without mounts got a volume:\n%s", other)
	}
}

func TestPutSecretAndCloudWatchAgentBlocks(t *testing.T) {
	out := Render(Parse("test", `{{template "put-secret" .S}}
{{template "cloudwatch-agent" .L}}`), map[string]any{
		"S": SecretFile{Var: "pw", File: "db-password", AppUID: AppUID},
		"L": HostLogs{LogGroup: "host", Files: []LogFile{{"/a.log", "a"}, {"/b.log", "b"}}},
	})
	for _, want := range []string{
		"printf '%s' \"$pw\" >/run/ladder/db-password.new\nchown 65532:65532 /run/ladder/db-password.new\nchmod 0400",
		"mv -f /run/ladder/db-password.new /run/ladder/db-password\n",
		`"file_path": "/a.log", "log_group_name": "host", "log_stream_name": "{instance_id}/a"},` + "\n",
		`"file_path": "/b.log", "log_group_name": "host", "log_stream_name": "{instance_id}/b"}` + "\n  ]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
