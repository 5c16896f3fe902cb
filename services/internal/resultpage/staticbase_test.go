package resultpage

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ladder-cdk/ladder/services/testenv"
)

// TestStaticBaseURL: with STATIC_BASE_URL the page links its CSS and
// JavaScript on that origin (same paths, same ?v=) and its policy allows
// exactly that origin for scripts and styles; without it, links (relative)
// and policy are what they always were. The service serves the assets
// either way.
func TestStaticBaseURL(t *testing.T) {
	hash := func(name string) string {
		b, err := StaticFS.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:6])
	}
	css, js := hash("result.css"), hash("result.js")
	const rest = "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	cases := []struct {
		base, cssLink, jsLink, csp string
	}{
		{"",
			`<link rel="stylesheet" href="static/result/result.css?v=` + css + `">`,
			`<script src="static/result/result.js?v=` + js + `" defer></script>`,
			"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " + rest},
		{"https://d1.cloudfront.net",
			`<link rel="stylesheet" href="https://d1.cloudfront.net/static/result/result.css?v=` + css + `">`,
			`<script src="https://d1.cloudfront.net/static/result/result.js?v=` + js + `" defer></script>`,
			"default-src 'none'; script-src 'self' https://d1.cloudfront.net; style-src 'self' https://d1.cloudfront.net 'unsafe-inline'; " + rest},
		{"https://cdn.example.com:8443/ladder",
			`<link rel="stylesheet" href="https://cdn.example.com:8443/ladder/static/result/result.css?v=` + css + `">`,
			`<script src="https://cdn.example.com:8443/ladder/static/result/result.js?v=` + js + `" defer></script>`,
			"default-src 'none'; script-src 'self' https://cdn.example.com:8443; style-src 'self' https://cdn.example.com:8443 'unsafe-inline'; " + rest},
	}
	u := testenv.MigratedDatabase(t)
	for _, tc := range cases {
		r := newReplica(t, u, replicaOpts{noWatch: true, staticBase: tc.base})
		vote(t, r.store, 2, 1) // the database is shared: 2:1 each time, so always 67%
		resp, page := get(t, r.srv.URL+"/")
		if resp.StatusCode != 200 || !strings.Contains(page, tc.cssLink) || !strings.Contains(page, tc.jsLink) {
			t.Errorf("base %q: %s, page lacks %s or %s:\n%s", tc.base, resp.Status, tc.cssLink, tc.jsLink, page)
		}
		if n := strings.Count(page, "static/result/"); n != 2 {
			t.Errorf("base %q: %d asset links, want 2", tc.base, n)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != tc.csp {
			t.Errorf("base %q: CSP\n%s\nwant\n%s", tc.base, got, tc.csp)
		}
		if !strings.Contains(page, `<p class="pct" id="pct-a">67%</p>`) {
			t.Errorf("base %q: page does not show the tally:\n%s", tc.base, page)
		}
		// The service still serves what the page links, by the same path.
		for name, v := range map[string]string{"result.css": css, "result.js": js} {
			resp, body := get(t, r.srv.URL+"/static/result/"+name+"?v="+v)
			if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || body == "" {
				t.Errorf("base %q: GET %s = %s %q", tc.base, name, resp.Status, resp.Header.Get("Cache-Control"))
			}
		}
	}
}
