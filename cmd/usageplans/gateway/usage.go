package gateway

import (
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
// filter's VMs read and write, with the same CAS rules.
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
	st := usage.Local{Store: sharedStore{g.rt.SharedData(g.opts.VMID)}}
	resp := usage.Handle(a.parsed, st, g.rt.Clock().Now(), r.Method, target, body)
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

// holdBody delivers the request body to a filter that paused on the request headers, as
// Envoy does (the filter's usage API answers an UpdateUsage from its body; without this the
// gateway would wait for a continue that only the body brings). held reports that the body
// was delivered, whole: the upstream then gets the body as the filter buffered it.
// tooLarge reports a body over maxHeldBody, which Envoy answers 413.
func (g *Gateway) holdBody(s *host.Stream, r *http.Request, eos bool, act host.Action, err error) (held, tooLarge bool, _ host.Action, _ error) {
	if eos || err != nil || act != host.ActionPause || s.LocalResponse() != nil || s.Reset() {
		return false, false, act, err
	}
	b, rerr := io.ReadAll(io.LimitReader(r.Body, maxHeldBody+1))
	if rerr != nil {
		return false, false, act, nil // the client went away; the wait that follows sees it
	}
	if len(b) > maxHeldBody {
		return false, true, act, nil
	}
	_, err = s.RequestBody(b, true)
	return true, false, act, err
}
