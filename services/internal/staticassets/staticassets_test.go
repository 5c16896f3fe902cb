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

func TestLinkedOnAnotherOrigin(t *testing.T) {
	for _, prefix := range []string{"/static/x/", "static/x/"} { // rooted, and relative to the page
		s, err := New(fstest.MapFS{"static/app.css": {Data: []byte("body{}")}}, "static", prefix)
		if err != nil {
			t.Fatal(err)
		}
		same, err := s.At("")
		if err != nil || same != s || s.Origin() != "" {
			t.Fatalf("At(\"\") = %p, %v; origin %q", same, err, s.Origin())
		}
		cdn, err := s.At("https://d1.cloudfront.net:8443/ladder")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := cdn.URL("app.css")
		if want := "https://d1.cloudfront.net:8443/ladder/static/x/app.css?v=" + s.Hash("app.css"); u != want {
			t.Fatalf("URL = %q, want %q", u, want)
		}
		if cdn.Origin() != "https://d1.cloudfront.net:8443" {
			t.Fatalf("Origin = %q", cdn.Origin())
		}
		// The original keeps its links.
		if u, _ := s.URL("app.css"); u != prefix+"app.css?v="+s.Hash("app.css") {
			t.Fatalf("original URL = %q", u)
		}
		// The linked set still serves the files.
		mux := http.NewServeMux()
		mux.Handle("GET /static/x/{file}", cdn)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/static/x/app.css?v="+s.Hash("app.css"), nil))
		if w.Code != 200 || w.Body.String() != "body{}" {
			t.Fatalf("served by the linked set: %d %q", w.Code, w.Body.String())
		}
	}
	for _, bad := range []string{"/cdn", "cdn.example.com", "https://cdn.example.com/?x=1", "https://cdn.example.com/#x", "%zz"} {
		s, _ := New(fstest.MapFS{}, ".", "/static/x/")
		if _, err := s.At(bad); err == nil {
			t.Errorf("At(%q) accepted", bad)
		}
	}
}
