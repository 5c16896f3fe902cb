package votepage_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ladder-cdk/ladder/services/internal/votepage"
)

// fileHash is the ?v= of a file as it sits on disk.
func fileHash(t *testing.T, name string) string {
	t.Helper()
	b, err := io.ReadAll(mustOpen(t, "static/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return sha256hex(b)[:12]
}

// TestStaticBaseURL: with STATIC_BASE_URL the page links its assets on
// that origin (same paths, same ?v=) and its policy allows exactly that
// origin; without it, links and policy are what they always were. The
// service serves the assets either way.
func TestStaticBaseURL(t *testing.T) {
	css, icon := fileHash(t, "vote.css"), fileHash(t, "favicon.svg")
	cases := []struct {
		base            string
		cssLink, iconLk string
		csp             string
	}{
		{"",
			`<link rel="stylesheet" href="/static/vote/vote.css?v=` + css + `">`,
			`<link rel="icon" type="image/svg+xml" href="/static/vote/favicon.svg?v=` + icon + `">`,
			"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
		{"https://d1.cloudfront.net",
			`<link rel="stylesheet" href="https://d1.cloudfront.net/static/vote/vote.css?v=` + css + `">`,
			`<link rel="icon" type="image/svg+xml" href="https://d1.cloudfront.net/static/vote/favicon.svg?v=` + icon + `">`,
			"default-src 'none'; style-src 'self' https://d1.cloudfront.net; img-src 'self' https://d1.cloudfront.net; " +
				"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
		{"https://cdn.example.com:8443/ladder",
			`<link rel="stylesheet" href="https://cdn.example.com:8443/ladder/static/vote/vote.css?v=` + css + `">`,
			`<link rel="icon" type="image/svg+xml" href="https://cdn.example.com:8443/ladder/static/vote/favicon.svg?v=` + icon + `">`,
			"default-src 'none'; style-src 'self' https://cdn.example.com:8443; img-src 'self' https://cdn.example.com:8443; " +
				"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
	}
	for _, tc := range cases {
		rec := &recordingSink{}
		h, err := votepage.New(votepage.Options{OptionA: "Cats", OptionB: "Dogs", Hostname: testHost, Sink: rec, Log: quiet,
			StaticBaseURL: tc.base})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []*httptest.ResponseRecorder{get(h, "/"), post(h, "vote=b", "")} {
			body := w.Body.String()
			if w.Code != http.StatusOK || !strings.Contains(body, tc.cssLink) || !strings.Contains(body, tc.iconLk) {
				t.Errorf("base %q: %d, page lacks %s or %s:\n%s", tc.base, w.Code, tc.cssLink, tc.iconLk, body)
			}
			if n := strings.Count(body, "/static/"); n != 2 {
				t.Errorf("base %q: %d asset links, want 2", tc.base, n)
			}
			if got := w.Header().Get("Content-Security-Policy"); got != tc.csp {
				t.Errorf("base %q: CSP\n%s\nwant\n%s", tc.base, got, tc.csp)
			}
		}
		if rec.count() != 1 {
			t.Errorf("base %q: %d votes recorded, want 1", tc.base, rec.count())
		}
		// The service still serves what the page links, by the same path.
		for name, v := range map[string]string{"vote.css": css, "favicon.svg": icon} {
			w := get(h, "/static/vote/"+name+"?v="+v)
			if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") || w.Body.Len() == 0 {
				t.Errorf("base %q: GET %s = %d %q", tc.base, name, w.Code, w.Header().Get("Cache-Control"))
			}
		}
	}
	if _, err := votepage.New(votepage.Options{Sink: &recordingSink{}, Log: quiet, StaticBaseURL: "cdn.example.com"}); err == nil {
		t.Fatal("a base URL without a scheme was accepted")
	}
}

func get(h http.Handler, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}
