// Package hostsetup is the part of a rung's EC2 host setup that every rung
// shares: the voting app's containers as hardened systemd units, secrets put
// into tmpfs for them, host logs shipped by the CloudWatch agent, and the
// cloud-init user data that reruns the setup on every boot.
//
// A rung writes its own setup script (what it installs, where its data and
// secrets come from) as a text/template parsed with Parse, and includes the
// shared blocks:
//
//	{{template "app-units" .App}}        // an Apps value
//	{{template "put-secret" .Secret}}    // a SecretFile value
//	{{template "cloudwatch-agent" .Logs}} // a HostLogs value
package hostsetup

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/jsii-runtime-go"
)

//go:embed blocks.sh.tmpl
var blocks string

var base = template.Must(template.New("hostsetup").Parse(blocks))

// AppUID is the distroless "nonroot" user the service images run as; the
// units run them as this user and the metadata guard blocks it.
const AppUID = 65532

// Service is one container of the voting app, run by ladder-<Name>.service.
type Service struct {
	Name  string
	Image string
	// Env lines (KEY=value) go to /etc/ladder/<Name>.env, never argv. They
	// must not hold a secret: user data is readable by anyone who can
	// describe the instance.
	Env []string
	// Mounts are the host files this container may read; a service gets
	// only the secrets it uses (on Tier 1 the internet-facing vote service
	// has no database password).
	Mounts []Mount
}

// Mount is a host file bind-mounted read-only into a container.
type Mount struct{ Source, Target string }

// Apps is the data of the "app-units" block.
type Apps struct {
	Region      string
	AppUID      int
	AppLogGroup string
	// Requires are units every container needs besides Docker and the
	// metadata guard (e.g. the one that puts the secrets in place).
	Requires []string
	// After are units the containers start after, without requiring them.
	After    []string
	Services []Service
}

// SecretFile is the data of the "put-secret" block: the value of shell
// variable Var is written atomically to /run/ladder/<File> (tmpfs), readable
// only by the app's user.
type SecretFile struct {
	Var    string
	File   string
	AppUID int
}

// LogFile is one host log file the CloudWatch agent ships.
type LogFile struct{ Path, Stream string }

// HostLogs is the data of the "cloudwatch-agent" block: each file goes to
// LogGroup in the stream <instance id>/<Stream>.
type HostLogs struct {
	LogGroup string
	Files    []LogFile
}

// Parse parses a rung's setup script with the shared blocks available.
func Parse(name, text string) *template.Template {
	return template.Must(template.Must(base.Clone()).New(name).Parse(text))
}

// Render executes a parsed setup script; a failure is a bug in the
// template or its data, found by every synth.
func Render(t *template.Template, data any) string {
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		panic(fmt.Sprintf("rendering host setup %s: %v", t.Name(), err))
	}
	return out.String()
}

// cloudConfigEveryBoot makes cloud-init run the user-data script on every
// boot instead of only the first, so a stop/start (or a reboot) applies the
// setup again; every script is written to be idempotent.
const cloudConfigEveryBoot = `#cloud-config
cloud_final_modules:
- scripts-per-once
- scripts-per-boot
- scripts-per-instance
- [scripts-user, always]
- final-message
`

// UserData is a cloud-config part that reruns the setup on every boot,
// followed by the setup script itself.
func UserData(script string) awsec2.UserData {
	ud := awsec2.NewMultipartUserData(nil)
	AddSetup(ud, script)
	return ud
}

// AddSetup fills an empty multipart user data with the parts of UserData.
// A launch template renders its user data only at synth, so a rung can make
// the template first and add the script once the script's inputs (such as
// the logical id of the group using the template) exist.
func AddSetup(ud awsec2.MultipartUserData, script string) {
	ud.AddPart(awsec2.MultipartBody_FromRawBody(&awsec2.MultipartBodyOptions{
		ContentType: jsii.String(`text/cloud-config; charset="utf-8"`),
		Body:        jsii.String(cloudConfigEveryBoot),
	}))
	// A raw part, not FromUserData: that one base64-encodes the script
	// inside the MIME document, a third more bytes against EC2's 16 KB
	// user-data limit, for nothing cloud-init needs.
	ud.AddPart(awsec2.MultipartBody_FromRawBody(&awsec2.MultipartBodyOptions{
		ContentType: jsii.String(`text/x-shellscript; charset="utf-8"`),
		Body:        jsii.String(script),
	}))
}
