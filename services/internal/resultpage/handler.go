package resultpage

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/store"
)

//go:embed templates/result.html
var templateFS embed.FS

var pageTmpl = template.Must(template.ParseFS(templateFS, "templates/result.html"))

// Tallier reads the current tally; store.Postgres implements it.
type Tallier interface {
	Tally(ctx context.Context) (store.Tally, error)
}

// Options configure New.
type Options struct {
	OptionA, OptionB string // labels of options a and b
	Store            Tallier
	Hub              *Hub
	Log              *slog.Logger
	// Heartbeat is the interval of ": ping" comments on idle streams
	// (default 15s): proxies and load balancers close silent connections.
	Heartbeat time.Duration
	// MaxStream bounds a stream's life (default 10m, each stream +-10%
	// jittered); the browser then reconnects, possibly to another replica,
	// so connections rebalance after a scale-out.
	MaxStream time.Duration
	// WriteTimeout drops a client that does not take an event within this
	// time (default 30s), so a dead peer does not pin a goroutine.
	WriteTimeout time.Duration
	// StaticBaseURL, when set, is where the page links its CSS and
	// JavaScript (a CDN holding the same files under the same paths:
	// config's STATIC_BASE_URL); "" links them on this service.
	StaticBaseURL string
}

// Handler serves the result service's routes.
type Handler struct {
	o   Options
	mux *http.ServeMux
	// css, js and csp are the page's links and policy, fixed at New.
	css, js, csp string
	// enc caches the JSON of the last broadcast so thousands of streams do
	// not each encode the same value.
	enc atomic.Pointer[encoded]
}

type encoded struct {
	seq  uint64
	body []byte
}

// New returns the handler. o.Store and o.Hub are required.
func New(o Options) *Handler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.MaxStream <= 0 {
		o.MaxStream = 10 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	linked, err := assets.At(o.StaticBaseURL)
	if err != nil {
		// config.Load has already refused such a value; a page with its
		// own assets is better than none.
		o.Log.Error("static assets stay on this service: "+err.Error(), "error", err.Error())
		linked = assets
	}
	h.css, h.js = assetURL(linked, "result.css"), assetURL(linked, "result.js")
	h.csp = contentSecurityPolicy(linked.Origin())
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /api/results", h.results)
	h.mux.HandleFunc("GET /events", h.events)
	h.mux.Handle("GET /static/result/{file}", assets)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Results is the JSON of GET /api/results and of each /events event.
type Results struct {
	OptionA string `json:"option_a"`
	OptionB string `json:"option_b"`
	A       int64  `json:"a"`
	B       int64  `json:"b"`
	Total   int64  `json:"total"`
}

func (h *Handler) body(t store.Tally) []byte {
	b, _ := json.Marshal(Results{OptionA: h.o.OptionA, OptionB: h.o.OptionB, A: t.A, B: t.B, Total: t.Total()})
	return b
}

// current returns the tally to show: the watcher's value while the watch is
// live (no query per page view), otherwise a read (from the replica if one
// is configured). If that read fails, the last watched value is better than
// an error page.
func (h *Handler) current(ctx context.Context) (store.Tally, error) {
	cached, have, live := h.o.Hub.Cached()
	if live {
		return cached, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	t, err := h.o.Store.Tally(ctx)
	if err != nil {
		if have {
			return cached, nil
		}
		return store.Tally{}, err
	}
	return t, nil
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	h.o.Log.Warn("cannot read tally", "path", r.URL.Path, "error", err.Error())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "2")
	http.Error(w, "results are unavailable, try again shortly", http.StatusServiceUnavailable)
}

func (h *Handler) results(w http.ResponseWriter, r *http.Request) {
	t, err := h.current(r.Context())
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(h.body(t), '\n'))
}

// Percentages splits 100 between a and b, rounding a's share half up and
// giving b the rest so the two always add up to 100. With no votes the page
// shows 50/50, as the original does: an even split reads as "undecided",
// whereas 0/0 would look broken next to two equal halves.
func Percentages(a, b int64) (int, int) {
	t := a + b
	if t <= 0 {
		return 50, 50
	}
	pa := int((200*a + t) / (2 * t))
	return pa, 100 - pa
}

// VotesText is the total line under the percentages.
func VotesText(total int64) string {
	switch total {
	case 0:
		return "No votes yet"
	case 1:
		return "1 vote"
	}
	return strconv.FormatInt(total, 10) + " votes"
}

type pageView struct {
	OptionA, OptionB string
	A, B             int64
	PctA, PctB       int
	Votes            string
	CSS, JS          string
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	t, err := h.current(r.Context())
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	v := pageView{OptionA: h.o.OptionA, OptionB: h.o.OptionB, A: t.A, B: t.B,
		Votes: VotesText(t.Total()), CSS: h.css, JS: h.js}
	v.PctA, v.PctB = Percentages(t.A, t.B)
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, v); err != nil {
		h.o.Log.Error("render result page", "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", h.csp)
	_, _ = w.Write(buf.Bytes())
}

// contentSecurityPolicy: everything comes from this origin, except the
// script and stylesheet from assetOrigin when they are linked on a CDN. The
// bars' widths are inline style attributes so the page is right without
// JavaScript.
func contentSecurityPolicy(assetOrigin string) string {
	src := "'self'"
	if assetOrigin != "" {
		src += " " + assetOrigin
	}
	return "default-src 'none'; script-src " + src + "; style-src " + src + " 'unsafe-inline'; " +
		"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

func (h *Handler) encode(u Update) []byte {
	if e := h.enc.Load(); e != nil && e.seq == u.Seq {
		return e.body
	}
	b := h.body(u.Tally)
	h.enc.Store(&encoded{seq: u.Seq, body: b})
	return b
}

func sseData(b []byte) []byte {
	return fmt.Appendf(nil, "data: %s\n\n", b)
}
