package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/state"
)

// TestLimitIDsFitState: the longest throttle name a configuration can produce fits a state
// entry. Before the resource path was capped, a long path made a name over state.MaxName,
// and the key's entry could not be decoded after its first write (issue 3).
func TestLimitIDsFitState(t *testing.T) {
	if maxLimitIDLen > state.MaxName*9/10 {
		t.Fatalf("the longest limit id is %d bytes, want well under state.MaxName (%d)", maxLimitIDLen, state.MaxName)
	}
	id := func(c byte) string { return strings.Repeat(string(c), maxIDLen) }
	// The longest resource: 512 bytes, every segment a literal.
	resource := strings.Repeat("/"+strings.Repeat("r", 63), maxResourceLen/64)
	if len(resource) != maxResourceLen {
		t.Fatalf("resource is %d bytes, want %d", len(resource), maxResourceLen)
	}
	api, stage, plan := id('a'), id('s'), id('p')
	mk := resource + "/OPTIONS"
	c := mustParse(t, fmt.Sprintf(`{
	  "apis": [{"id": %q, "resources": [{"path": %q, "resourceMethods": {"OPTIONS": {"apiKeyRequired": true}}}],
	    "stages": [{"stageName": %q, "methodSettings": {%q: {"throttlingRateLimit": 1, "throttlingBurstLimit": 1}}}]}],
	  "usagePlans": [{"id": %q, "throttle": {"rateLimit": 1, "burstLimit": 1},
	    "apiStages": [{"apiId": %q, "stage": %q, "throttle": {%q: {"rateLimit": 1, "burstLimit": 1}}}]}]
	}`, api, resource, stage, mk, plan, api, stage, mk))

	s := c.APIs[0].Stages[0]
	ids := []string{s.methodLimits[0].ID}
	for _, l := range c.Plans[0].KeyLimits() {
		ids = append(ids, l.ID)
	}
	if len(ids) != 3 {
		t.Fatalf("limits %q, want a stage-method, a plan and a plan-method limit", ids)
	}
	longest := 0
	for _, n := range ids {
		longest = max(longest, len(n))
		var e state.Entry
		e.SetBucket(n, limit.Bucket{})
		var back state.Entry
		if err := state.Decode(state.AppendEncode(nil, &e), &back); err != nil {
			t.Errorf("an entry with bucket %.40q... (%d bytes) does not decode: %v", n, len(n), err)
		} else if len(back.Buckets) != 1 || back.Buckets[0].Name != n {
			t.Errorf("bucket name %.40q... did not survive encoding", n)
		}
	}
	if longest != maxLimitIDLen {
		t.Errorf("longest limit id %d bytes, want maxLimitIDLen %d", longest, maxLimitIDLen)
	}
}
