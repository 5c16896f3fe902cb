package resultpage

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// TestBrowserPageUpdatesLive loads the page in headless Chromium and checks
// that its script applies a vote pushed over /events after the page was
// rendered. Skipped without a chromium binary (Debian: apt-get install
// chromium) and under -short.
//
// --dump-dom prints the DOM once the load event fired, and an open
// EventSource does not hold that event back, so the harness appends an image
// to the page whose response is held until the vote has been pushed.
func TestBrowserPageUpdatesLive(t *testing.T) { browserPageUpdatesLive(t, "") }

// TestBrowserAssetsFromCDN is the same with STATIC_BASE_URL pointing at
// another (HTTPS) origin that holds the files, as CloudFront would: the
// page's policy must let the browser load and run them from there.
func TestBrowserAssetsFromCDN(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /static/result/{file}", func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		hits[req.URL.RequestURI()]++
		mu.Unlock()
		assets.ServeHTTP(w, req)
	})
	cdn := httptest.NewTLSServer(mux)
	defer cdn.Close()
	if !browserPageUpdatesLive(t, cdn.URL, "--ignore-certificate-errors") {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"result.css", "result.js"} {
		if hits["/static/result/"+name+"?v="+AssetHash(name)] == 0 {
			t.Errorf("the browser did not fetch %s from the CDN origin (requests: %v)", name, hits)
		}
	}
}

// browserPageUpdatesLive reports false when it skipped.
func browserPageUpdatesLive(t *testing.T, staticBase string, flags ...string) bool {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
		return false
	}
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no chromium binary on PATH")
		return false
	}
	t.Parallel()
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{labels: [2]string{"Tabs", "Spaces"}, staticBase: staticBase})
	vote(t, r.store, 1, 0)
	r.waitLive(t, store.Tally{A: 1})

	pushed := make(chan struct{})
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, req *http.Request) {
		rec := httptest.NewRecorder()
		r.h.ServeHTTP(rec, req)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(bytes.Replace(rec.Body.Bytes(), []byte("</body>"), []byte(`<img src="hold" alt=""></body>`), 1))
	})
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-pushed:
			time.Sleep(300 * time.Millisecond) // for the script to handle the event
		case <-time.After(10 * time.Second):
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, req *http.Request) {
		// The browser is subscribed: now vote, from outside the page.
		once.Do(func() {
			go func() {
				defer close(pushed)
				time.Sleep(200 * time.Millisecond)
				vote(t, r.store, 0, 3)
				r.waitLive(t, store.Tally{A: 1, B: 3})
				time.Sleep(100 * time.Millisecond) // past the coalescing window
			}()
		})
		r.h.ServeHTTP(w, req)
	})
	mux.Handle("/", r.h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--no-first-run", "--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, "--dump-dom", srv.URL+"/")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	for _, s := range []string{`id="pct-a">25%<`, `id="pct-b">75%<`, `id="total">4 votes<`, `id="label-b">Spaces<`} {
		if !strings.Contains(dom, s) {
			t.Fatalf("DOM after the pushed vote lacks %q:\n%s", s, dom)
		}
	}
	if !regexp.MustCompile(`id="bar-a"[^>]*style="width: 25%;?"`).MatchString(dom) {
		t.Fatalf("bar width not updated:\n%s", dom)
	}
	return true
}
