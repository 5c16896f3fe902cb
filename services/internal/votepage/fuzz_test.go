package votepage_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
)

// validMethod mirrors what net/http's server lets through: a token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range []byte(m) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// namesVoterID reports whether a Cookie header has a pair named voter_id.
func namesVoterID(header string) bool {
	for _, part := range strings.Split(header, ";") {
		name, _, _ := strings.Cut(part, "=")
		if strings.TrimSpace(name) == "voter_id" {
			return true
		}
	}
	return false
}

// FuzzVoteHandler throws arbitrary methods, content types, bodies and
// cookies at the page. Whatever arrives: no 5xx, at most one vote per
// request and only on a 200 POST, every vote valid and exactly what the
// body asked for, under the browser's own (or newly issued) id.
func FuzzVoteHandler(f *testing.F) {
	seeds := []struct{ method, ctype, body, cookie string }{
		{"POST", "application/x-www-form-urlencoded", "vote=a", "voter_id=0123456789abcdef"},
		{"POST", "application/x-www-form-urlencoded", "vote=b", ""},
		{"POST", "application/x-www-form-urlencoded; charset=UTF-8", "vote=b&x=1", "voter_id=fedcba9876543210; other=1"},
		{"POST", "application/x-www-form-urlencoded", "vote=c", "voter_id=0123456789abcdef"},
		{"POST", "application/x-www-form-urlencoded", "vote=a&vote=b", ""},
		{"POST", "application/x-www-form-urlencoded", "vote=%61", "voter_id=0123456789ABCDEF"},
		{"POST", "application/x-www-form-urlencoded", "vote=a;", ""},
		{"POST", "application/x-www-form-urlencoded", "vote=" + strings.Repeat("a", 1100), ""},
		{"POST", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"vote\"\r\n\r\na\r\n--b--", ""},
		{"POST", "", "vote=a", ""},
		{"POST", "text/html", "vote=a", "voter_id="},
		{"POST", "application/x-www-form-urlencoded", "", "voter_id=\"0123456789abcdef\""},
		{"POST", "application/x-www-form-urlencoded", "vote=a", "voter_id=0123456789abcdef; voter_id=zz"},
		{"POST", "application/x-www-form-urlencoded", "vote=b", "voter_id=0123 456789abcdef"},
		{"POST", "application/x-www-form-urlencoded", "vote=b", "voter_id;x=1"},
		{"GET", "", "", ""},
		{"GET", "", "", "voter_id=nothex"},
		{"HEAD", "", "", "voter_id=0123456789abcdef"},
		{"PUT", "application/x-www-form-urlencoded", "vote=a", ""},
		{"OPTIONS", "", "", ""},
		{"BREW", "application/x-www-form-urlencoded", "vote=b", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.ctype, s.body, s.cookie)
	}
	rec := &recordingSink{}
	h := newPage(f, rec)
	f.Fuzz(func(t *testing.T, method, ctype, body, cookie string) {
		if !validMethod(method) {
			t.Skip("net/http never delivers this method")
		}
		r := httptest.NewRequest(http.MethodGet, "/", strings.NewReader(body))
		r.Method = method
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		before := rec.count()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%q %q %q cookie %q: status %d", method, ctype, body, cookie, w.Code)
		}
		// Every vote is checked right after the request that recorded it,
		// so together the iterations validate everything recorded.
		added := rec.since(before)
		for _, v := range added {
			if err := v.Validate(); err != nil {
				t.Fatalf("invalid vote reached the sink: %+v: %v", v, err)
			}
		}
		if method != http.MethodPost || w.Code != http.StatusOK {
			if len(added) != 0 {
				t.Fatalf("%s answered %d but recorded %+v", method, w.Code, added)
			}
			return
		}
		if len(added) != 1 {
			t.Fatalf("200 POST recorded %d votes", len(added))
		}
		v := added[0]
		form, err := url.ParseQuery(body)
		if err != nil || len(form["vote"]) != 1 || form["vote"][0] != v.Option {
			t.Fatalf("body %q recorded as %+v", body, v)
		}
		want := ""
		if c, err := r.Cookie("voter_id"); err == nil {
			want = c.Value
		} else if namesVoterID(cookie) {
			// Only a browser without any voter_id may get a new one.
			t.Fatalf("vote accepted under a new id though the request had cookie %q", cookie)
		} else {
			c := voterCookie(t, w)
			if c == nil {
				t.Fatal("vote without cookie got no new cookie")
			}
			want = c.Value
		}
		if v.VoterID != want {
			t.Fatalf("vote under %q, browser's id is %q", v.VoterID, want)
		}
		if chosen(w.Body.String()) != v.Option {
			t.Fatalf("page marks %q, vote was %q", chosen(w.Body.String()), v.Option)
		}
	})
}

// The recorded votes must also pass ballot.Decode after encoding, i.e. the
// queue payload of anything the page accepts is a valid payload.
func TestAcceptedVotesEncodeToValidPayloads(t *testing.T) {
	rec := &recordingSink{}
	h := newPage(t, rec)
	for _, body := range []string{"vote=a", "vote=b", "x=1&vote=a"} {
		if w := post(h, body, ""); w.Code != http.StatusOK {
			t.Fatalf("%s = %d", body, w.Code)
		}
	}
	for _, v := range rec.recorded() {
		p, err := ballot.Encode(v, testHost)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ballot.Decode(p); err != nil || got != v {
			t.Fatalf("round trip %+v -> %s -> %+v, %v", v, p, got, err)
		}
	}
}
