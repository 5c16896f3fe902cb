package test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"

	"github.com/ladder-cdk/ladder/app/ladder"
)

// The one synth that stages and bundles assets for real, as `cdk synth`
// does (TestMain skips bundling for speed). It checks what `cdk deploy`
// would build each image from: the services' sources and Dockerfiles, and
// nothing machine-made (binaries, test files) that would change an image's
// hash without changing the image.
func TestImageAssetsStageTheServicesSourcesOnly(t *testing.T) {
	app := newApp(nil)
	app.Node().SetContext(jsii.String("aws:cdk:bundling-stacks"), []any{"**"})
	if _, _, err := ladder.New(app, repoRoot()); err != nil {
		t.Fatal(err)
	}
	outdir := *app.Synth(nil).Directory()

	raw, err := os.ReadFile(filepath.Join(outdir, tier1+".assets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		DockerImages map[string]struct {
			Source struct {
				Directory  string `json:"directory"`
				DockerFile string `json:"dockerFile"`
				Platform   string `json:"platform"`
			} `json:"source"`
		} `json:"dockerImages"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for hash, img := range manifest.DockerImages {
		files[img.Source.DockerFile] = true
		if img.Source.Platform != "linux/arm64" {
			t.Errorf("image %s is for %q; every rung runs Graviton (linux/arm64)", hash, img.Source.Platform)
		}
		dir := filepath.Join(outdir, img.Source.Directory)
		for _, must := range []string{"go.mod", "go.sum", img.Source.DockerFile, "scripts/build.sh", "schema/migrations"} {
			if _, err := os.Stat(filepath.Join(dir, must)); err != nil {
				t.Errorf("image %s: build context lacks %s", hash, must)
			}
		}
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(dir, p)
			if d != nil && d.IsDir() && rel == "bin" {
				t.Errorf("image %s: build context holds built binaries (bin/)", hash)
				return filepath.SkipDir
			}
			if strings.HasSuffix(rel, "_test.go") {
				t.Errorf("image %s: build context holds a test file %s", hash, rel)
			}
			return nil
		})
	}
	for _, want := range []string{"cmd/vote/Dockerfile", "cmd/worker/Dockerfile", "cmd/result/Dockerfile"} {
		if !files[want] {
			t.Errorf("no image asset built from %s (have %v)", want, files)
		}
	}
}
