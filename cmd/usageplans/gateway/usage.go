package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/filter/usage"
	"github.com/usageplans/usageplans/host"
)

// usagePrefix is where the admin listener serves AWS's usage API, at AWS's paths.
const usagePrefix = "/usageplans"

// maxUsageBody bounds an UpdateUsage body, as the filter's admin route does.
const maxUsageBody = 64 << 10

// serveUsage answers GET /usageplans/{id}/usage and PATCH /usageplans/{id}/keys/{keyId}/usage
// with the filter's own usage package on the host's shared data of the plugin's vm_id and
// the configuration serving now, at the host's clock: the same counts and grants the
// filter's VMs read and write, with the same CAS rules. In global mode it answers from RLS
// (usage_global.go).
func (g *Gateway) serveUsage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && !g.mutationBy(w, r, http.MethodPatch) {
		return
	}
	a := g.active()
	if a.parsed == nil {
		usageReply(w, usage.Response{Status: 503, Body: `{"message":"The configuration serving does not parse: no usage API"}`,
			Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "ServiceUnavailableException"}}})
		return
	}
	var body []byte
	if r.Method == http.MethodPatch {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxUsageBody+1))
		if err != nil {
			return // the client went away
		}
		if len(body) > maxUsageBody {
			usageReply(w, usage.Response{Status: 413, Body: `{"message":"Request body too large"}`,
				Headers: [][2]string{{"content-type", "application/json"}, {"x-amzn-errortype", "BadRequestException"}}})
			return
		}
	}
	target := strings.TrimPrefix(r.URL.EscapedPath(), usagePrefix)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	var resp usage.Response
	if a.parsed.Global != nil {
		resp = g.serveFleetUsage(a.parsed, r.Method, target, body)
	} else {
		st := usage.Local{Store: sharedStore{g.rt.SharedData(g.opts.VMID)}}
		resp = usage.Handle(a.parsed, st, g.rt.Clock().Now(), r.Method, target, body)
	}
	if r.Method == http.MethodPatch {
		g.logf("usage API: PATCH %s: %d %s", strings.TrimPrefix(r.URL.Path, usagePrefix), resp.Status, resp.Body)
	}
	usageReply(w, resp)
}

func usageReply(w http.ResponseWriter, resp usage.Response) {
	for _, h := range resp.Headers {
		w.Header().Set(h[0], h[1])
	}
	w.WriteHeader(resp.Status)
	w.Write([]byte(resp.Body))
}

// sharedStore is the host's shared data as a state.Store, for the gateway's own reads and
// CAS writes.
type sharedStore struct{ d host.SharedData }

func (s sharedStore) Get(key string) ([]byte, uint32, error) {
	v, cas, ok := s.d.Get(key)
	if !ok {
		return nil, 0, state.ErrNotFound
	}
	return v, cas, nil
}

func (s sharedStore) Set(key string, value []byte, cas uint32) error {
	switch st := s.d.Set(key, value, cas); st {
	case host.StatusOK:
		return nil
	case host.StatusCasMismatch:
		return state.ErrCASMismatch
	default:
		return errors.New("shared data: " + st.String())
	}
}

// maxHeldBody is what the gateway buffers of a request body while the filter holds its
// headers: Envoy's default per-connection buffer limit.
const maxHeldBody = 1 << 20

// holdBody delivers the request body, chunk by chunk as it arrives, to a filter that
// paused on the request headers with StopIteration (--allow-on-headers-stop-iteration, as
// Envoy's PluginConfig field of that name): the filter's usage API answers an UpdateUsage
// from its body, and global mode holds a request while it asks RLS. Each chunk
// restarts the stream idle timer. It stops at the body's end, once the filter has
// continued the request or answered it, or at maxHeldBody when the filter holds the body
// with StopIterationAndWatermark (flow control: the rest is read once the filter lets the
// request go), and returns what the filter was given and the rest of the body to stream
// through the filter as usual. tooLarge reports over maxHeldBody buffered while the filter
// held the request with StopIterationAndBuffer, which Envoy answers 413.
func (g *Gateway) holdBody(s *host.Stream, r *http.Request, x *exchange, eos bool, act host.Action, err error) (h heldBody, _ host.Action, _ error) {
	h.rest = r.Body
	if eos || err != nil || act != host.ActionPause || s.LocalResponse() != nil || s.Reset() || s.StoppedAll(host.StreamRequest) {
		// Stopped all iteration (Envoy's default for a pause on the headers): the body is
		// not read until the filter continues, as Envoy's watermark stops reading it.
		return h, act, err
	}
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, rerr := r.Body.Read(buf)
		last := rerr == io.EOF
		if rerr != nil && !last {
			return h, act, nil // the client went away or a timer fired; the wait that follows sees it
		}
		x.timers.touch()
		if last {
			x.timers.requestReceived()
		}
		if n == 0 && !last {
			continue
		}
		if total += n; total > maxHeldBody && s.Paused(host.StreamRequest) && !s.Watermarked(host.StreamRequest) {
			h.tooLarge = true
			return h, act, nil
		}
		delivered, _, err := s.RequestBodyWhilePaused(buf[:n], last)
		if !delivered { // continued (or answered) while this chunk was read: it streams
			h.started = total > n
			h.rest = io.MultiReader(bytes.NewReader(append([]byte(nil), buf[:n]...)), r.Body)
			return h, act, nil
		}
		h.started = true
		if err != nil || last {
			h.whole = last
			return h, act, err
		}
		if total >= maxHeldBody && s.Watermarked(host.StreamRequest) {
			// Flow control: the rest is not read until the filter lets the request go.
			return h, act, nil
		}
	}
}

// heldBody is what holdBody read of a request body while the filter held the headers.
type heldBody struct {
	started  bool      // chunks went to the filter: what it left of them (Body) goes upstream first
	whole    bool      // ... and they were all of it
	rest     io.Reader // the rest of the client's body, to stream through the filter
	tooLarge bool
}
