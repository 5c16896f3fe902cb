// Package votepage is the vote service's web page: GET / shows the two
// options, POST / records the voter's choice through a sink.Sink and shows
// the page again with the choice marked. A browser is identified by a
// random voter_id cookie, as in the original app; voting again replaces
// the earlier vote downstream (last vote wins by the stamp taken here).
//
// POST accepts only application/x-www-form-urlencoded, which is what the
// page's form, curl -d and the load generator send. multipart/form-data is
// refused with 415: supporting it would add a parser to the hot path for
// no client that needs it.
//
// Bad input is answered with a 4xx and never reaches the sink.
package votepage

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/metrics"
	"github.com/ladder-cdk/ladder/services/internal/sink"
	"github.com/ladder-cdk/ladder/services/internal/staticassets"
)

const (
	// CookieName is the original app's cookie.
	CookieName = "voter_id"
	// MaxBody caps a POST body: a vote is "vote=a", so 1 KiB leaves room
	// for extra fields a client might send and nothing more.
	MaxBody = 1 << 10
	// cookieMaxAge is 400 days, the longest lifetime browsers honour.
	cookieMaxAge = 400 * 24 * 60 * 60
	formType     = "application/x-www-form-urlencoded"
)

//go:embed templates/index.html
var templateFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(templateFiles, "templates/index.html"))

// Options configure New.
type Options struct {
	OptionA, OptionB string // labels of options a and b
	// Hostname is shown as "Processed by <hostname>" (os.Hostname in the
	// service, anything in tests).
	Hostname string
	Sink     sink.Sink
	Log      *slog.Logger
	// Now stamps votes; defaults to time.Now.
	Now func() time.Time
	// StaticBaseURL, when set, is where the page links its assets (a CDN
	// holding the same files under the same paths: config's
	// STATIC_BASE_URL); "" links them on this service.
	StaticBaseURL string
}

type handler struct {
	sink sink.Sink
	log  *slog.Logger
	now  func() time.Time
	// The page depends only on which option (none, a, b) to mark, so the
	// three variants are rendered once instead of per request.
	pages map[string][]byte
	csp   string
	// Counters resolved once: a label lookup per vote is measurable.
	accepted map[string]prometheus.Counter
}

type pageData struct {
	A, B, Hostname string
	Voted          string
	CSS, Icon      string
}

// New returns the page's handler: GET|HEAD|POST / and GET /static/vote/*.
// Everything else is 404 (405 for another method on /).
func New(o Options) (http.Handler, error) {
	if o.Sink == nil {
		return nil, errors.New("votepage: a sink is required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	assets, err := staticassets.New(Static(), ".", StaticPrefix)
	if err != nil {
		return nil, err
	}
	linked, err := assets.At(o.StaticBaseURL)
	if err != nil {
		return nil, fmt.Errorf("votepage: %w", err)
	}
	data := pageData{A: o.OptionA, B: o.OptionB, Hostname: o.Hostname}
	if data.CSS, err = linked.URL("vote.css"); err != nil {
		return nil, err
	}
	if data.Icon, err = linked.URL("favicon.svg"); err != nil {
		return nil, err
	}
	h := &handler{sink: o.Sink, log: o.Log, now: o.Now, csp: contentSecurityPolicy(linked.Origin()),
		pages: map[string][]byte{}, accepted: map[string]prometheus.Counter{}}
	for _, opt := range ballot.Options {
		h.accepted[opt] = metrics.VotesAccepted.WithLabelValues(opt)
	}
	for _, voted := range []string{"", ballot.OptionA, ballot.OptionB} {
		data.Voted = voted
		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, data); err != nil {
			return nil, fmt.Errorf("render vote page: %w", err)
		}
		h.pages[voted] = buf.Bytes()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.show)
	mux.HandleFunc("POST /{$}", h.vote)
	mux.HandleFunc("/{$}", h.methodNotAllowed)
	mux.Handle("GET "+StaticPrefix+"{file}", assets)
	return mux, nil
}

// show is GET /: the page, and a voter id for a new browser.
func (h *handler) show(w http.ResponseWriter, r *http.Request) {
	id, fresh, err := voterID(r)
	if err != nil {
		h.badCookie(w, r, false)
		return
	}
	if fresh {
		setVoterCookie(w, r, id)
	}
	h.writePage(w, "")
}

// vote is POST /: validate everything, hand the vote to the sink, answer
// only after the sink acknowledged it.
func (h *handler) vote(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != formType {
		w.Header().Set("Accept-Post", formType)
		h.reject(w, http.StatusUnsupportedMediaType, "content_type", "send the vote as "+formType)
		return
	}
	id, fresh, err := voterID(r)
	if err != nil {
		h.badCookie(w, r, true)
		return
	}
	option, status, reason, msg := readVote(w, r)
	if status != 0 {
		h.reject(w, status, reason, msg)
		return
	}
	v := ballot.Vote{VoterID: id, Option: option, CastAt: h.now().UnixNano()}
	if err := v.Validate(); err != nil {
		// Unreachable with the checks above; kept so nothing invalid can
		// ever reach the sink.
		h.reject(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if err := h.sink.Cast(r.Context(), v); err != nil {
		// The sink logs failed writes once per batch; logging each
		// request here would flood the log during an outage.
		w.Header().Set("Retry-After", "1")
		reason := "unavailable"
		if errors.Is(err, context.Canceled) {
			reason = "client_gone"
		}
		h.reject(w, http.StatusServiceUnavailable, reason, "your vote could not be recorded right now; please try again")
		return
	}
	h.accepted[option].Inc()
	if fresh {
		setVoterCookie(w, r, id)
	}
	h.writePage(w, option)
}

// readVote reads the form body and returns the option, or the status,
// metric reason and message to refuse it with. The query string is not
// consulted: a vote is the body of a POST only.
func readVote(w http.ResponseWriter, r *http.Request) (option string, status int, reason, msg string) {
	if r.ContentLength > MaxBody {
		return "", http.StatusRequestEntityTooLarge, "too_large", "request body larger than " + strconv.Itoa(MaxBody) + " bytes"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", http.StatusRequestEntityTooLarge, "too_large", "request body larger than " + strconv.Itoa(MaxBody) + " bytes"
		}
		return "", http.StatusBadRequest, "bad_form", "could not read the request body"
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", http.StatusBadRequest, "bad_form", "malformed form body"
	}
	vals := form["vote"]
	switch {
	case len(vals) == 0:
		return "", http.StatusBadRequest, "missing_vote", `missing form field "vote"`
	case len(vals) > 1:
		return "", http.StatusBadRequest, "bad_option", `form field "vote" given more than once`
	}
	if err := ballot.ValidateOption(vals[0]); err != nil {
		return "", http.StatusBadRequest, "bad_option", err.Error()
	}
	return vals[0], 0, "", ""
}

// voterID returns the request's voter id, or a new one (fresh) if the
// browser has none. A cookie that is present but malformed is an error, not
// something to replace silently: it was not set by us.
func voterID(r *http.Request) (id string, fresh bool, err error) {
	c, err := r.Cookie(CookieName)
	if errors.Is(err, http.ErrNoCookie) {
		// net/http drops cookies whose value it cannot parse; one named
		// voter_id that it dropped is malformed, not absent.
		if hasCookieNamed(r, CookieName) {
			return "", false, ballot.ErrBadVoterID
		}
		id, err := ballot.NewVoterID()
		return id, true, err
	}
	if err != nil || !ballot.ValidVoterID(c.Value) {
		return "", false, ballot.ErrBadVoterID
	}
	return c.Value, false, nil
}

// hasCookieNamed reports whether any Cookie header has a pair named name,
// parsable or not.
func hasCookieNamed(r *http.Request, name string) bool {
	for _, line := range r.Header.Values("Cookie") {
		for part := range strings.SplitSeq(line, ";") {
			k, _, _ := strings.Cut(part, "=")
			if strings.TrimSpace(k) == name {
				return true
			}
		}
	}
	return false
}

// badCookie refuses a request with a malformed voter_id and expires that
// cookie, so the voter gets a fresh id by reloading rather than being
// stuck with an unusable page.
func (h *handler) badCookie(w http.ResponseWriter, r *http.Request, isVote bool) {
	http.SetCookie(w, voterCookie(r, "", -1))
	msg := "malformed " + CookieName + " cookie (want 16 lowercase hex characters); it has been cleared, reload the page to get a new one"
	if isVote {
		h.reject(w, http.StatusBadRequest, "bad_voter_id", msg+" and vote again")
		return
	}
	plain(w, http.StatusBadRequest, msg)
}

func (h *handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD, POST")
	h.reject(w, http.StatusMethodNotAllowed, "method", "method "+r.Method+" not allowed on /")
}

func (h *handler) reject(w http.ResponseWriter, status int, reason, msg string) {
	metrics.VotesRejected.WithLabelValues(reason).Inc()
	plain(w, status, msg)
}

func plain(w http.ResponseWriter, status int, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func (h *handler) writePage(w http.ResponseWriter, voted string) {
	page := h.pages[voted]
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(page)))
	// Per-voter responses (and Set-Cookie): no shared cache may keep them.
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page)
}

// contentSecurityPolicy allows the stylesheet and the icon (an image) from
// assetOrigin as well when the assets are linked on a CDN; nothing else.
func contentSecurityPolicy(assetOrigin string) string {
	src := "'self'"
	if assetOrigin != "" {
		src += " " + assetOrigin
	}
	return "default-src 'none'; style-src " + src + "; img-src " + src + "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

func setVoterCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, voterCookie(r, id, cookieMaxAge))
}

func voterCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   overTLS(r),
	}
}

// overTLS reports whether the browser used HTTPS, directly or through a
// TLS-terminating load balancer (which sets X-Forwarded-Proto).
func overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}
