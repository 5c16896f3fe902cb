// Package staticassets serves a page's embedded CSS, JavaScript and images
// under content-hash URLs. The files are plain (no templating), so the same
// bytes can be uploaded to S3 under the same key prefix and served by a CDN;
// Set.At makes the page link them there instead.
package staticassets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

type file struct {
	body  []byte
	ctype string
	hash  string // short content hash: the ?v= of the file's URL
}

// Set is one page's asset directory, read and hashed once so serving a
// file is a map lookup.
type Set struct {
	urlPrefix string
	origin    string // scheme://host[:port] of the links; "" for this site
	files     map[string]file
}

// New reads every file under dir of fsys. urlPrefix is what the page's
// links start with (e.g. "/static/vote/").
func New(fsys fs.FS, dir, urlPrefix string) (*Set, error) {
	s := &Set{urlPrefix: urlPrefix, files: map[string]file{}}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read static %s: %w", p, err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		s.files[path.Base(p)] = file{body: b, ctype: ct, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static assets in %s: %w", dir, err)
	}
	return s, nil
}

// Hash is the ?v= value of a file ("" if there is no such file).
func (s *Set) Hash(name string) string { return s.files[name].hash }

// At returns the set linking its files at base, an absolute URL such as a
// CDN's (config.Load's STATIC_BASE_URL, already checked and without a
// trailing slash): base + the path the service serves them at, + ?v=. The
// CDN holds the files under that same key prefix, so only the origin
// changes. base "" returns s unchanged. The returned set still serves the
// files itself: pages rendered before the switch, and a fallback, use them.
func (s *Set) At(base string) (*Set, error) {
	if base == "" {
		return s, nil
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("static base URL %q: want an absolute URL without query or fragment", base)
	}
	c := *s
	c.origin = u.Scheme + "://" + u.Host
	// The prefix may be relative ("static/result/", resolved against the
	// page); on another origin it is rooted.
	c.urlPrefix = strings.TrimRight(base, "/") + "/" + strings.TrimLeft(s.urlPrefix, "/")
	return &c, nil
}

// Origin is the scheme://host[:port] the links point at, for the page's
// Content-Security-Policy; "" when they point at the page's own origin.
func (s *Set) Origin() string { return s.origin }

// URL is the versioned URL of a file: the only place links are built.
func (s *Set) URL(name string) (string, error) {
	f, ok := s.files[name]
	if !ok {
		return "", fmt.Errorf("static asset %s is missing", name)
	}
	return s.urlPrefix + name + "?v=" + f.hash, nil
}

// ServeHTTP serves the file named by the route's {file} wildcard. Only a
// URL naming this exact content may be cached forever. During a rolling
// deploy an old page can ask for ?v=<old hash> from a new replica; caching
// the new bytes under that URL would pin the mismatch in browsers and the
// CDN, so such requests revalidate instead.
func (s *Set) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := s.files[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", `"`+f.hash+`"`)
	if r.URL.Query().Get("v") == f.hash {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
