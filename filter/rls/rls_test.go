package rls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The request the filter sends for one key: exact bytes, worked out by hand from the
// field numbers of rls.proto and ratelimit.proto.
func TestAppendRequestBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		want string // hex
	}{
		{"empty", Request{}, ""},
		{"domain only", Request{Domain: "up"}, "0a027570"},
		{"request hits", Request{Domain: "up", HitsAddend: 300}, "0a027570" + "18ac02"},
		{"one entry", Request{Domain: "up", Descriptors: []Descriptor{{Entries: []Entry{{"k", "v"}}}}},
			"0a027570" + "1208" + "0a06" + "0a016b" + "120176"},
		{"limit and hits 0 (check only)", Request{Domain: "up", Descriptors: []Descriptor{{
			Entries: []Entry{{"p", "a"}}, Limit: &Limit{RequestsPerUnit: 1000, Unit: Year}, HasHits: true}}},
			"0a027570" + "1211" + "0a06" + "0a0170" + "120161" + "1205" + "08e807" + "1006" + "1a00"},
		{"hits 5", Request{Domain: "up", Descriptors: []Descriptor{{
			Entries: []Entry{{"p", "a"}}, Hits: 5, HasHits: true}}},
			"0a027570" + "120c" + "0a06" + "0a0170" + "120161" + "1a02" + "0805"},
	} {
		got := hex.EncodeToString(AppendRequest(nil, &tc.req))
		if got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The encoding reads back through the generated Envoy types as the request meant.
func TestAppendRequestMatchesGeneratedTypes(t *testing.T) {
	req := Request{Domain: "usageplans", HitsAddend: 2, Descriptors: []Descriptor{
		{Entries: []Entry{{"plan", "gold"}, {"key", "k1"}, {"period", "m202612"}},
			Limit: &Limit{RequestsPerUnit: 1000, Unit: Year}, Hits: 7, HasHits: true},
		{Entries: []Entry{{"plan", "gold"}}, Limit: &Limit{RequestsPerUnit: 10, Unit: Day}},
		{Entries: []Entry{{"a", ""}}, HasHits: true},
	}}
	want := &rlsv3.RateLimitRequest{Domain: "usageplans", HitsAddend: 2, Descriptors: []*ratelimitv3.RateLimitDescriptor{
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "plan", Value: "gold"}, {Key: "key", Value: "k1"}, {Key: "period", Value: "m202612"}},
			Limit: &ratelimitv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 1000, Unit: 6}, HitsAddend: wrapperspb.UInt64(7)},
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "plan", Value: "gold"}},
			Limit: &ratelimitv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 10, Unit: 4}},
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "a"}}, HitsAddend: wrapperspb.UInt64(0)},
	}}
	b := AppendRequest(nil, &req)
	got := &rlsv3.RateLimitRequest{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
	canonical, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, canonical) {
		t.Errorf("bytes %x, generated code's %x", b, canonical)
	}
}

func TestDecodeResponseBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string // hex
		want Response
	}{
		{"empty", "", Response{}},
		{"OK, no statuses", "0801", Response{Overall: CodeOK}},
		{"over limit with status", "0802" + "1210" + "0802" + "1205" + "08e807" + "1006" + "1800" + "2203" + "08b42d",
			Response{Overall: CodeOverLimit, Statuses: []Status{{Code: CodeOverLimit, Limit: Limit{1000, Year}, ResetSeconds: 5812}}}},
		{"remaining, reset with nanos rounds up", "0801" + "120c" + "0801" + "1805" + "2206" + "0802" + "10c0843d",
			Response{Overall: CodeOK, Statuses: []Status{{Code: CodeOK, Remaining: 5, ResetSeconds: 3}}}},
		{"unknown fields skipped", "0801" + "2a03616263" + "3a00" + "1206" + "0801" + "4a00" + "1802",
			Response{Overall: CodeOK, Statuses: []Status{{Code: CodeOK, Remaining: 2}}}},
	} {
		b, _ := hex.DecodeString(tc.in)
		var got Response
		if err := DecodeResponse(b, &got); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !equalResponse(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func equalResponse(a, b Response) bool {
	if a.Overall != b.Overall || len(a.Statuses) != len(b.Statuses) {
		return false
	}
	for i := range a.Statuses {
		if a.Statuses[i] != b.Statuses[i] {
			return false
		}
	}
	return true
}

// An answer encoded by the generated code, with every field RLS may set, decodes to what
// the filter needs.
func TestDecodeResponseFromGeneratedTypes(t *testing.T) {
	in := &rlsv3.RateLimitResponse{
		OverallCode: rlsv3.RateLimitResponse_OVER_LIMIT,
		Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{
			{Code: rlsv3.RateLimitResponse_OK, CurrentLimit: &rlsv3.RateLimitResponse_RateLimit{Name: "n", RequestsPerUnit: 10, Unit: rlsv3.RateLimitResponse_RateLimit_WEEK, UnitMultiplier: wrapperspb.UInt32(2)},
				LimitRemaining: 4, DurationUntilReset: durationpb.New(90e9)},
			{Code: rlsv3.RateLimitResponse_OVER_LIMIT, CurrentLimit: &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: 3, Unit: rlsv3.RateLimitResponse_RateLimit_DAY},
				DurationUntilReset: durationpb.New(1)},
		},
		RawBody: []byte("body"),
	}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var got Response
	if err := DecodeResponse(b, &got); err != nil {
		t.Fatal(err)
	}
	want := Response{Overall: CodeOverLimit, Statuses: []Status{
		{Code: CodeOK, Limit: Limit{10, Week}, Remaining: 4, ResetSeconds: 90},
		{Code: CodeOverLimit, Limit: Limit{3, Day}, ResetSeconds: 1},
	}}
	if !equalResponse(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"truncated tag", "80"},
		{"truncated varint", "08"},
		{"overall code out of range", "0803"},
		{"overall code wrong wire type", "0a0101"},
		{"statuses wrong wire type", "1001"},
		{"status length past the end", "1205"},
		{"status code out of range", "12020809"},
		{"status limit unit out of range", "1204" + "1202" + "1008"},
		{"duration wrong wire type", "1203" + "2201" + "09"},
		{"unknown field truncated", "2a05ab"},
		{"group wire type unterminated", "0b"},
	} {
		b, _ := hex.DecodeString(tc.in)
		var r Response
		err := DecodeResponse(b, &r)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
	// More statuses than MaxStatuses.
	var b []byte
	for range MaxStatuses + 1 {
		b = append(b, 0x12, 0x02, 0x08, 0x01)
	}
	var r Response
	if err := DecodeResponse(b, &r); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d statuses: err = %v", MaxStatuses+1, err)
	}
	b = b[:4*MaxStatuses]
	if err := DecodeResponse(b, &r); err != nil || len(r.Statuses) != MaxStatuses {
		t.Errorf("%d statuses: %v, %d decoded", MaxStatuses, err, len(r.Statuses))
	}
}

func TestUnitWindows(t *testing.T) {
	day := func(y int, m time.Month, d int) int64 { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() }
	now := time.Date(2026, 12, 5, 10, 30, 15, 0, time.UTC).Unix() // a Saturday
	for _, tc := range []struct {
		u    Unit
		want int64
	}{
		{Second, now}, {Minute, now - 15}, {Hour, now - 30*60 - 15}, {Day, day(2026, 12, 5)},
		{Week, day(2026, 12, 3)},  // the Thursday before: 1970-01-01 was one
		{Month, day(2026, 12, 3)}, // day 20790 = 693 × 30
		{Year, day(2025, 12, 18)}, // day 20440 = 56 × 365
		{UnitUnknown, 0},
	} {
		if got := tc.u.WindowStart(now); got != tc.want {
			t.Errorf("%v: window start %v, want %v", tc.u, time.Unix(got, 0).UTC(), time.Unix(tc.want, 0).UTC())
		}
	}
}
