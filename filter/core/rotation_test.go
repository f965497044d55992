package core

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/state"
)

// The decision accepts a rotated key's previous value until its time, as the same key (its
// plan, its counters), and answers Forbidden "unknown API key" from that instant on.
func TestPreviousValueUntil(t *testing.T) {
	const old = "KeyOneOld000000000000000000000001"
	d := sha256.Sum256([]byte(old))
	until := t0.Add(time.Hour)
	cfg := shop(t, `"value": "KeyOne00000000000000000000000001"}`,
		`"value": "KeyOne00000000000000000000000001", "previousValues": [{"valueSha256": "`+
			hex.EncodeToString(d[:])+`", "until": "`+until.Format(time.RFC3339)+`"}]}`)
	var s state.MemStore
	var dc Decider
	for i, st := range []struct {
		at      time.Time
		key     string
		outcome Outcome
		reason  string
		keyID   string
	}{
		{t0, old, Allow, "within every limit", "k1"},
		{until.Add(-time.Nanosecond), old, Allow, "within every limit", "k1"},
		{until, old, Forbidden, "unknown API key", ""},
		{until, k1, Allow, "within every limit", "k1"},
		{until.Add(time.Hour), old, Forbidden, "unknown API key", ""},
	} {
		dec := dc.Decide(cfg, get("/items", st.key), st.at, &s)
		var id string
		if dec.Key != nil {
			id = dec.Key.ID
		}
		if dec.Outcome != st.outcome || dec.Reason != st.reason || id != st.keyID {
			t.Errorf("step %d: %v %q key %q, want %v %q key %q", i, dec.Outcome, dec.Reason, id, st.outcome, st.reason, st.keyID)
		}
	}
	// Old and new value share k1's quota of 3 a day: three admitted, the fourth is over it.
	if got := dc.Decide(cfg, get("/items", k1), until.Add(2*time.Hour), &s); got.Outcome != QuotaExceeded {
		t.Errorf("fourth request of the day: %v, want %v (the previous value counts against the same quota)", got.Outcome, QuotaExceeded)
	}
}
