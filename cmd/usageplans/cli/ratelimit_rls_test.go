package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/usageplans/usageplans/filter/global"
	"github.com/usageplans/usageplans/internal/rlstest"
)

// The real RLS loads what ratelimit-config prints, and answers the filter's configure-time
// check with the limit that proves it holds the domain.
func TestRateLimitConfigLoadsInRLS(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plugin.json")
	if err := os.WriteFile(file, []byte(rlsPlugin), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if st := ratelimitConfig([]string{file}, &out, &errb, time.Now()); st != ExitOK {
		t.Fatalf("status %d: %s", st, errb.String())
	}
	env := rlstest.Start(t, rlstest.Options{Domain: "usageplans", Config: out.String()})
	cc, err := grpc.NewClient(env.RLS.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := rlsv3.NewRateLimitServiceClient(cc).ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "usageplans",
		Descriptors: []*rlcommon.RateLimitDescriptor{{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: global.CheckKey, Value: global.CheckValue}},
			HitsAddend: wrapperspb.UInt64(0)}}})
	if err != nil {
		t.Fatalf("%v\nRLS log:\n%s", err, env.RLS.Log())
	}
	st := resp.Statuses[0]
	if st.Code != rlsv3.RateLimitResponse_OK || st.CurrentLimit.GetRequestsPerUnit() != 1 || st.CurrentLimit.GetUnit() != rlsv3.RateLimitResponse_RateLimit_YEAR {
		t.Errorf("check answered %v, want OK with the 1/YEAR limit", resp)
	}
}
