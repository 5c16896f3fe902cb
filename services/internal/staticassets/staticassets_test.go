package staticassets

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestVersionedURLsAndCaching(t *testing.T) {
	s, err := New(fstest.MapFS{"static/app.css": {Data: []byte("body{}")}}, "static", "/static/x/")
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.URL("app.css")
	if err != nil || !strings.HasPrefix(u, "/static/x/app.css?v=") || len(s.Hash("app.css")) != 12 {
		t.Fatalf("URL = %q, %v", u, err)
	}
	if _, err := s.URL("missing.css"); err == nil {
		t.Fatal("a missing file got a URL")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/x/{file}", s)
	get := func(target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		return w
	}
	if w := get(u); w.Code != 200 || w.Body.String() != "body{}" || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Fatalf("current version: %d %q %q", w.Code, w.Header().Get("Cache-Control"), w.Header().Get("Content-Type"))
	}
	// Another version's URL must not be cached under this content.
	if w := get("/static/x/app.css?v=000000000000"); w.Code != 200 || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("stale version: %d %q", w.Code, w.Header().Get("Cache-Control"))
	}
	if w := get("/static/x/nope.js"); w.Code != http.StatusNotFound {
		t.Fatalf("unknown file: %d", w.Code)
	}
}
