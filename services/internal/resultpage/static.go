package resultpage

import (
	"embed"

	"github.com/ladder-cdk/ladder/services/internal/staticassets"
)

// StaticFS holds the page's CSS and JavaScript, served under /static/result/.
// The files are plain (no templating) so the same bytes can be uploaded to
// S3 under static/result/ and served by a CDN.
//
//go:embed static
var StaticFS embed.FS

// assets are linked relatively ("static/result/..."), so the page also works
// under a path prefix.
var assets = func() *staticassets.Set {
	s, err := staticassets.New(StaticFS, "static", "static/result/")
	if err != nil {
		panic("resultpage: embedded static files: " + err.Error())
	}
	return s
}()

// AssetHash returns the ?v= value for a static file ("" if unknown).
func AssetHash(name string) string { return assets.Hash(name) }

func assetURL(s *staticassets.Set, name string) string {
	u, _ := s.URL(name) // the page names only files it embeds; tests check them
	return u
}
