package resultpage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

// StaticFS holds the page's CSS and JavaScript, served under /static/result/.
// The files are plain (no templating) so the same bytes can be uploaded to
// S3 under static/result/ and served by a CDN.
//
//go:embed static
var StaticFS embed.FS

type asset struct {
	body  []byte
	ctype string
	hash  string // short content hash: the ?v= of the page's links
}

var assets = loadAssets()

func loadAssets() map[string]asset {
	m := map[string]asset{}
	err := fs.WalkDir(StaticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := StaticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		m[path.Base(p)] = asset{body: b, ctype: ct, hash: hex.EncodeToString(sum[:])[:12]}
		return nil
	})
	if err != nil {
		panic("resultpage: embedded static files: " + err.Error())
	}
	return m
}

// AssetHash returns the ?v= value for a static file ("" if unknown).
func AssetHash(name string) string { return assets[name].hash }

func assetURL(name string) string {
	return "static/result/" + name + "?v=" + AssetHash(name)
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", `"`+a.hash+`"`)
	// Only a URL naming this exact content may be cached forever. During a
	// rolling deploy an old page can ask for ?v=<old hash> from a new
	// replica; caching the new bytes under that URL for a year would pin
	// the mismatch in browsers and the CDN, so those revalidate instead.
	if r.URL.Query().Get("v") == a.hash {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
