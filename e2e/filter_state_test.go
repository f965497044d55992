package e2e

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/usageplans/usageplans/filter/limit"
	"github.com/usageplans/usageplans/filter/state"
	"github.com/usageplans/usageplans/filter/usage"
)

// What the filter in Wasm stores is exactly what the native encoder writes for the state
// the requests imply, under keys bounded by the configuration: rejected requests (no key, an
// unknown, disabled or stray key, an unmatched resource) store nothing, and the account and
// stage throttles (off here) have no entries.
func TestFilterStoredState(t *testing.T) {
	e := startFilter(t, fltSetup{})
	e.wantStatuses(t, fltDaily, 200, 200)
	e.wantStatuses(t, fltTight, 200)
	for _, k := range []string{"", fltUnknown, fltOff, fltStray} {
		e.wantStatuses(t, k, 403)
	}
	wantReply(t, e.get("/owners", apiKey(fltGold)), 403, fltMissingToken, `{"message":"Missing Authentication Token"}`)

	store := e.rt.SharedData("usageplans")
	wantKeys := []string{"usageplans:key:daily:daily-key", "usageplans:key:tight:tight-key",
		"usageplans:usage:daily:daily-key", "usageplans:usage:tight:tight-key"}
	if got := store.Keys(); !slices.Equal(got, wantKeys) {
		t.Fatalf("shared data keys = %q, want %q", got, wantKeys)
	}
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	for key, want := range map[string]state.Entry{
		wantKeys[0]: {Quota: limit.Counter{Window: day.Unix(), Used: 2, Created: fltT0.Unix()}},
		wantKeys[1]: {Buckets: []state.Slot{{Name: "plan:tight", Bucket: limit.Bucket{Tokens: 1, Last: fltT0.UnixNano()}}}},
	} {
		got, _, _ := store.Get(key)
		if wantBytes := state.AppendEncode(nil, &want); !bytes.Equal(got, wantBytes) {
			var dec state.Entry
			err := state.Decode(got, &dec)
			t.Errorf("%s = %x (decoded %+v, %v)\nwant %x (%+v)", key, got, dec, err, wantBytes, want)
		}
	}
	// The usage entries: the admitted requests of the day, 2 and 1 (filter/usage's version 1).
	for key, used := range map[string]int64{wantKeys[2]: 2, wantKeys[3]: 1} {
		want := usage.Record{Day: usage.DayOf(fltT0), N: 1}
		want.Days[0].Used = used
		if got, _, _ := store.Get(key); !bytes.Equal(got, usage.AppendEncode(nil, &want)) {
			t.Errorf("%s = %x, want %x (%d admitted on %s)", key, got, usage.AppendEncode(nil, &want), used, fltT0.Format(time.DateOnly))
		}
	}
}
