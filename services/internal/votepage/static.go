package votepage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
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

type asset struct {
	data  []byte
	ctype string
	hash  string // short content hash, the ?v= of the asset's URL
}

// loadAssets reads and hashes every embedded file once, so serving one is
// a map lookup.
func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(Static(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Static(), name)
		if err != nil {
			return fmt.Errorf("read static %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[name] = asset{data: b, ctype: ct, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	return out, err
}

// assetURL is the versioned URL of a static file.
func assetURL(assets map[string]asset, name string) (string, error) {
	a, ok := assets[name]
	if !ok {
		return "", fmt.Errorf("static asset %s is missing", name)
	}
	return StaticPrefix + name + "?v=" + a.hash, nil
}

// serveStatic serves an embedded asset. A URL carrying the current content
// hash can be cached forever (a new file gets a new URL). Any other URL
// gets a short lifetime, so during a rolling deploy a CDN never pins new
// content under an old version's URL, or the reverse.
func (h *handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", `"`+a.hash+`"`)
	if r.URL.Query().Get("v") == a.hash {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}
