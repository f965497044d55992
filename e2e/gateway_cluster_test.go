package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/usageplans/usageplans/internal/rlstest"
)

// serve --cluster: bad values are refused before anything starts, with the flag's name and
// the cause.
func TestServeClusterFlag(t *testing.T) {
	for _, c := range []struct{ arg, err string }{
		{"ratelimit", `invalid value "ratelimit" for flag -cluster: want NAME=URL, got "ratelimit"`},
		{"=grpc://127.0.0.1:1", `invalid value "=grpc://127.0.0.1:1" for flag -cluster: want NAME=URL, got "=grpc://127.0.0.1:1"`},
		{"rl=127.0.0.1:8081", `invalid value "rl=127.0.0.1:8081" for flag -cluster: cluster rl: "127.0.0.1:8081": want grpc://HOST:PORT, http://HOST[:PORT][/prefix] or https://HOST[:PORT][/prefix]`},
		{"rl=grpc://127.0.0.1", `invalid value "rl=grpc://127.0.0.1" for flag -cluster: cluster rl: "grpc://127.0.0.1": a grpc:// cluster is HOST:PORT and nothing else`},
		{"rl=tcp://127.0.0.1:1", `invalid value "rl=tcp://127.0.0.1:1" for flag -cluster: cluster rl: "tcp://127.0.0.1:1": scheme "tcp", want grpc, http or https`},
	} {
		status, stdout, stderr := runCLI("serve", "--cluster", c.arg, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
		if status != 2 || stdout != "" || !strings.HasPrefix(stderr, "usageplans serve: "+c.err+"\n") {
			t.Errorf("--cluster %s: status %d, stdout %q, stderr %q; want 2 and %q", c.arg, status, stdout, stderr, c.err)
		}
	}
	status, _, stderr := runCLI("serve", "--cluster", "a=grpc://127.0.0.1:1", "--cluster", "a=http://127.0.0.1:2")
	if want := `invalid value "a=http://127.0.0.1:2" for flag -cluster: cluster "a" given twice`; status != 2 || !strings.Contains(stderr, want) {
		t.Errorf("repeated name: status %d, stderr %q; want 2 and %q", status, stderr, want)
	}
	_, stdout, _ := runCLI("serve", "--help")
	if !strings.Contains(stdout, "-cluster NAME=URL") {
		t.Errorf("serve --help lacks -cluster NAME=URL:\n%s", stdout)
	}
}

// A --cluster grpc:// cluster reaches the real RLS from the filter, through the gateway: the
// host's ABI guest sends a hand-built ShouldRateLimit and gets RLS's answer.
func TestGatewayClusterToRLS(t *testing.T) {
	env := rlstest.Start(t, rlstest.Options{})
	g := startGateway(t, gwSetup{wasm: hostABIGuest(t), config: "{}", workers: 1,
		clusters: map[string]string{"ratelimit": "grpc://" + env.RLS.GRPCAddr}})
	// RateLimitRequest{domain: usageplans, descriptors: [{entries: [{plan, gold}], limit: 5/DAY}]}
	var entry, limit, desc, req []byte
	entry = protowire.AppendString(protowire.AppendTag(entry, 1, protowire.BytesType), "plan")
	entry = protowire.AppendString(protowire.AppendTag(entry, 2, protowire.BytesType), "gold")
	limit = protowire.AppendVarint(protowire.AppendTag(limit, 1, protowire.VarintType), 5)
	limit = protowire.AppendVarint(protowire.AppendTag(limit, 2, protowire.VarintType), 4) // DAY
	desc = protowire.AppendBytes(protowire.AppendTag(desc, 1, protowire.BytesType), entry)
	desc = protowire.AppendBytes(protowire.AppendTag(desc, 2, protowire.BytesType), limit)
	req = protowire.AppendString(protowire.AppendTag(req, 1, protowire.BytesType), "usageplans")
	req = protowire.AppendBytes(protowire.AppendTag(req, 2, protowire.BytesType), desc)
	frame := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(req))), req...)

	_, h := g.abiGet("/p", "grpccall", "x-cluster", "ratelimit", "x-body", hex.EncodeToString(frame),
		"x-path", "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit")
	f := strings.Split(h["x-r-grpccall"], "|")
	if len(f) != 5 || f[2] != ":status=200;content-type=application/grpc" || f[3] != "grpc-message=;grpc-status=0" {
		t.Fatalf("answer %q: want RLS's 200 with grpc-status 0 in the trailers", h["x-r-grpccall"])
	}
	body, _ := hex.DecodeString(f[4])
	var got rls.RateLimitResponse
	if len(body) < 5 || proto.Unmarshal(body[5:], &got) != nil || got.OverallCode != rls.RateLimitResponse_OK ||
		len(got.Statuses) != 1 || got.Statuses[0].LimitRemaining != 4 || got.Statuses[0].CurrentLimit.GetRequestsPerUnit() != 5 {
		t.Errorf("RLS answered %v, want OK with 4 of 5 remaining", &got)
	}
}
