package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
)

// VoteAppImagesProps points at the voting app's source.
type VoteAppImagesProps struct {
	// ServicesDir is the absolute path of the services module, the build
	// context of every image; each service's Dockerfile is cmd/<name>/Dockerfile.
	ServicesDir string
}

// VoteAppImages are the vote, worker and result images, built for arm64
// (every rung runs Graviton) by `cdk deploy` and pushed to the CDK bootstrap
// repository. Synth only stages the source: no Docker engine is needed.
type VoteAppImages struct {
	constructs.Construct
	Vote, Worker, Result awsecrassets.DockerImageAsset
}

func NewVoteAppImages(scope constructs.Construct, id string, props VoteAppImagesProps) *VoteAppImages {
	c := constructs.NewConstruct(scope, s(id))
	image := func(name string) awsecrassets.DockerImageAsset {
		return awsecrassets.NewDockerImageAsset(c, s(name), &awsecrassets.DockerImageAssetProps{
			Directory:   s(props.ServicesDir),
			File:        s("cmd/" + name + "/Dockerfile"),
			Platform:    awsecrassets.Platform_LINUX_ARM64(),
			DisplayName: s("voting app " + name),
		})
	}
	return &VoteAppImages{Construct: c, Vote: image("vote"), Worker: image("worker"), Result: image("result")}
}

// GrantPull lets a principal pull all three images.
func (i *VoteAppImages) GrantPull(grantee awsiam.IGrantable) {
	for _, img := range []awsecrassets.DockerImageAsset{i.Vote, i.Worker, i.Result} {
		img.Repository().GrantPull(grantee)
	}
}
