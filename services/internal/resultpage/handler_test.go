package resultpage

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestAPIResultsReflectsVotes(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{labels: [2]string{"Tabs", "Spaces"}})
	r.waitLive(t, store.Tally{})
	if got := getResults(t, r.srv.URL); got != (Results{OptionA: "Tabs", OptionB: "Spaces"}) {
		t.Fatalf("empty database: %+v", got)
	}
	vote(t, r.store, 2, 1)
	r.waitLive(t, store.Tally{A: 2, B: 1})
	reads := r.reads.Load()
	resp, _ := get(t, r.srv.URL+"/api/results")
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	want := Results{OptionA: "Tabs", OptionB: "Spaces", A: 2, B: 1, Total: 3}
	if got := getResults(t, r.srv.URL); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// The watch is live: answers come from memory, not a query each.
	if n := r.reads.Load() - reads; n != 0 {
		t.Fatalf("%d tally queries with a live watch, want 0", n)
	}
}

// Before the watcher has a value (starting up, or LISTEN down) every read
// goes to the database.
func TestAPIResultsWithoutWatchQueries(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{noWatch: true})
	vote(t, r.store, 1, 3)
	want := Results{OptionA: "Cats", OptionB: "Dogs", A: 1, B: 3, Total: 4}
	if got := getResults(t, r.srv.URL); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	vote(t, r.store, 1, 0)
	if got := getResults(t, r.srv.URL); got.A != 2 || got.Total != 5 {
		t.Fatalf("second read %+v, want a=2 total=5", got)
	}
	if n := r.reads.Load(); n != 2 {
		t.Fatalf("%d tally queries, want 2", n)
	}
}

func TestPageShowsTally(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{})
	r.waitLive(t, store.Tally{})

	resp, body := get(t, r.srv.URL+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	// No votes: an even split, as the original shows.
	for _, s := range []string{`id="label-a">Cats<`, `id="label-b">Dogs<`, `id="pct-a">50%<`, `id="pct-b">50%<`, `>No votes yet<`} {
		if !strings.Contains(body, s) {
			t.Fatalf("empty tally page lacks %q:\n%s", s, body)
		}
	}

	vote(t, r.store, 2, 1)
	r.waitLive(t, store.Tally{A: 2, B: 1})
	_, body = get(t, r.srv.URL+"/")
	for _, s := range []string{`id="pct-a">67%<`, `id="pct-b">33%<`, `>3 votes<`, `style="width: 67%"`, `style="width: 33%"`} {
		if !strings.Contains(body, s) {
			t.Fatalf("page lacks %q:\n%s", s, body)
		}
	}
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(body) {
		t.Fatalf("page loads something from another origin:\n%s", body)
	}

	vote(t, r.store, 0, 1) // 2 a, 2 b
	r.waitLive(t, store.Tally{A: 2, B: 2})
	_, body = get(t, r.srv.URL+"/")
	if !strings.Contains(body, `id="pct-a">50%<`) || !strings.Contains(body, ">4 votes<") {
		t.Fatalf("page after 2/2:\n%s", body)
	}
}

func TestPageEscapesLabels(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{labels: [2]string{`<script>alert(1)</script>`, `"Dogs" & <b>co</b>`}})
	vote(t, r.store, 1, 0)
	r.waitLive(t, store.Tally{A: 1})
	_, body := get(t, r.srv.URL+"/")
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>co") {
		t.Fatalf("label not escaped:\n%s", body)
	}
	for _, s := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;Dogs&#34; &amp; &lt;b&gt;co&lt;/b&gt;", `>1 vote<`, `id="pct-a">100%<`} {
		if !strings.Contains(body, s) {
			t.Fatalf("page lacks %q:\n%s", s, body)
		}
	}
	// The JSON carries the label as data; the page's script sets it with
	// textContent.
	if got := getResults(t, r.srv.URL); got.OptionA != `<script>alert(1)</script>` {
		t.Fatalf("JSON label %q", got.OptionA)
	}
}

func TestStaticAssets(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{noWatch: true})
	_, page := get(t, r.srv.URL+"/")
	refs := regexp.MustCompile(`(?:href|src)="(static/result/([a-z.]+)\?v=([0-9a-f]+))"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 2 {
		t.Fatalf("page references %d static files, want result.css and result.js:\n%s", len(refs), page)
	}
	for _, ref := range refs {
		url, name, v := ref[1], ref[2], ref[3]
		resp, body := get(t, r.srv.URL+"/"+url)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		sum := sha256.Sum256([]byte(body))
		if !strings.HasPrefix(hex.EncodeToString(sum[:]), v) || len(v) < 8 {
			t.Fatalf("%s: ?v=%s is not the content hash", name, v)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
			t.Fatalf("%s: Cache-Control %q", name, cc)
		}
		want := map[string]string{"result.css": "text/css", "result.js": "text/javascript"}[name]
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Fatalf("%s: Content-Type %q", name, ct)
		}
		disk, err := StaticFS.ReadFile("static/" + name)
		if err != nil || string(disk) != body {
			t.Fatalf("%s: served bytes differ from the embedded file (%v)", name, err)
		}
		// An old page asking for another version must not pin these bytes.
		resp, _ = get(t, r.srv.URL+"/static/result/"+name+"?v=000000000000")
		if cc := resp.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
			t.Fatalf("%s with a stale ?v: Cache-Control %q", name, cc)
		}
	}
	if resp, _ := get(t, r.srv.URL+"/static/result/nope.js"); resp.StatusCode != 404 {
		t.Fatalf("missing static file: %s", resp.Status)
	}
}

func TestBadRequests(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{noWatch: true})
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/", 405}, {"PUT", "/api/results", 405}, {"DELETE", "/events", 405}, {"POST", "/static/result/result.css", 405},
		{"GET", "/nope", 404}, {"GET", "/api/results/1", 404}, {"GET", "/static/result/", 404}, {"GET", "/index.html", 404},
	} {
		req, _ := http.NewRequest(c.method, r.srv.URL+c.path, strings.NewReader("vote=a"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
		}
	}
	if got := getResults(t, r.srv.URL); got.Total != 0 {
		t.Fatalf("bad requests changed the tally: %+v", got)
	}
}
