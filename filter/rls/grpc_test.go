package rls

import (
	"encoding/hex"
	"errors"
	"testing"
)

func TestFrames(t *testing.T) {
	r := Request{Domain: "up"}
	got := hex.EncodeToString(AppendRequestFrame([]byte{0xff}, &r))
	if want := "ff" + "0000000004" + "0a027570"; got != want {
		t.Errorf("AppendRequestFrame = %s, want %s", got, want)
	}
	if got := hex.EncodeToString(AppendFrame(nil, nil)); got != "0000000000" {
		t.Errorf("empty frame = %s", got)
	}
	msg, err := Unframe([]byte{0, 0, 0, 0, 2, 8, 1})
	if err != nil || hex.EncodeToString(msg) != "0801" {
		t.Errorf("Unframe = %x, %v", msg, err)
	}
	for _, bad := range []string{"", "00000000", "0100000000", "0000000002" + "08", "0000000001" + "0801", "0000000000" + "0000000000"} {
		b, _ := hex.DecodeString(bad)
		if _, err := Unframe(b); !errors.Is(err, ErrFrame) {
			t.Errorf("Unframe(%s): err = %v, want ErrFrame", bad, err)
		}
	}
}

func TestCallStatus(t *testing.T) {
	ok200 := [][2]string{{":status", "200"}, {"content-type", "application/grpc"}}
	for _, tc := range []struct {
		name              string
		headers, trailers [][2]string
		want              error // nil, a sentinel, or a *StatusError to compare
	}{
		{"OK in trailers", ok200, [][2]string{{"grpc-status", "0"}}, nil},
		{"trailers-only OK", append(ok200, [2]string{"grpc-status", "0"}), nil, nil},
		{"trailers win over headers", append(ok200, [2]string{"grpc-status", "14"}), [][2]string{{"grpc-status", "0"}}, nil},
		{"unavailable in trailers", ok200, [][2]string{{"grpc-status", "14"}, {"grpc-message", "redis down"}}, &StatusError{14, "redis down"}},
		{"trailers-only error", append(ok200, [2]string{"grpc-status", "2"}, [2]string{"grpc-message", "boom"}), nil, &StatusError{2, "boom"}},
		{"no status", ok200, nil, ErrHTTP},
		{"HTTP 503", [][2]string{{":status", "503"}}, nil, ErrHTTP},
		{"no :status", nil, nil, ErrHTTP},
		{"garbage status", ok200, [][2]string{{"grpc-status", "x"}}, ErrHTTP},
	} {
		err := CallStatus(tc.headers, tc.trailers)
		switch want := tc.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		case *StatusError:
			var se *StatusError
			if !errors.As(err, &se) || *se != *want || !errors.Is(err, ErrStatus) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, want)
			}
		default:
			if !errors.Is(err, want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, want)
			}
		}
	}
	long := make([]byte, 500)
	for i := range long {
		long[i] = 'a'
	}
	var se *StatusError
	if err := CallStatus(ok200, [][2]string{{"grpc-status", "13"}, {"grpc-message", string(long)}}); !errors.As(err, &se) || len(se.Message) != MaxMessage {
		t.Errorf("long message: %v", err)
	}
}

// FuzzDecodeResponse: any input decodes or fails with ErrMalformed, never panics, never keeps
// more than MaxStatuses, and what decodes re-encodes (by the test's own encoder) to an answer
// that decodes the same.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{"", "0801", "0802120e08021205" + "08e8071006" + "18002203" + "08b42d", "2a03616263", "1205"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Response
		err := DecodeResponse(b, &r)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(r.Statuses) > MaxStatuses {
			t.Fatalf("%d statuses", len(r.Statuses))
		}
		var again Response
		if err := DecodeResponse(encodeResponse(&r), &again); err != nil || !equalResponse(r, again) {
			t.Fatalf("round trip: %+v, %v; first %+v", again, err, r)
		}
		_, _ = Unframe(b)
	})
}

// encodeResponse is the test's encoder of the fields DecodeResponse reads.
func encodeResponse(r *Response) []byte {
	var b []byte
	if r.Overall != 0 {
		b = append(b, 0x08, byte(r.Overall))
	}
	for _, s := range r.Statuses {
		var m []byte
		m = appendVarintField(m, statusCode, uint64(s.Code))
		if s.Limit != (Limit{}) {
			l := appendVarintField(nil, limitRequests, uint64(s.Limit.RequestsPerUnit))
			l = appendVarintField(l, limitUnit, uint64(s.Limit.Unit))
			m = append(m, 0x12, byte(len(l)))
			m = append(m, l...)
		}
		m = appendVarintField(m, statusRemaining, uint64(s.Remaining))
		if s.ResetSeconds != 0 {
			d := appendVarintField(nil, durationSeconds, uint64(s.ResetSeconds))
			m = append(m, 0x22, byte(len(d)))
			m = append(m, d...)
		}
		b = append(b, 0x12, byte(len(m)))
		b = append(b, m...)
	}
	return b
}
