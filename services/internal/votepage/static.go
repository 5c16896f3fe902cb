package votepage

import (
	"embed"
	"io/fs"
)

// StaticPrefix is where the page's assets are served, and the key prefix a
// CDN stage uploads the static directory to, unchanged.
const StaticPrefix = "/static/vote/"

//go:embed static
var staticFiles embed.FS

// Static is the asset directory (flat, plain files) for tools that upload
// it elsewhere.
func Static() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
