package rls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// gRPC over HTTP/2 (grpc/grpc doc PROTOCOL-HTTP2.md): a request is POST :path with
// content-type application/grpc and te: trailers; each message is a 1-byte compressed flag,
// a 4-byte big-endian length, then the message; the call's status is grpc-status (and
// grpc-message) in the trailers, or in the headers of a trailers-only answer.

// Headers are the request headers of a ShouldRateLimit call to authority (the cluster name
// serves: Envoy's AsyncClient sends :authority as given).
func Headers(authority string) [][2]string {
	return [][2]string{
		{":method", "POST"},
		{":path", Path},
		{":authority", authority},
		{"content-type", "application/grpc"},
		{"te", "trailers"},
	}
}

// AppendFrame appends msg as one uncompressed gRPC message.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg)))
	return append(dst, msg...)
}

// AppendRequestFrame appends r as one framed gRPC message, without a second buffer.
func AppendRequestFrame(dst []byte, r *Request) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0)
	dst = AppendRequest(dst, r)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-5))
	return dst
}

// Errors of Unframe and CallStatus.
var (
	ErrFrame  = errors.New("rls: bad gRPC message framing")
	ErrHTTP   = errors.New("rls: not a gRPC answer")
	ErrStatus = errors.New("rls: gRPC call failed")
)

// Unframe returns the one message of a unary answer's body. A compressed message (the
// filter never offers compression), a length that does not match the body, or a second
// message is an error wrapping ErrFrame.
func Unframe(body []byte) ([]byte, error) {
	if len(body) < 5 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a message prefix", ErrFrame, len(body))
	}
	if body[0] != 0 {
		return nil, fmt.Errorf("%w: compressed flag %d", ErrFrame, body[0])
	}
	n := binary.BigEndian.Uint32(body[1:5])
	if uint64(n) != uint64(len(body)-5) {
		return nil, fmt.Errorf("%w: message of %d bytes in a body of %d", ErrFrame, n, len(body))
	}
	return body[5:], nil
}

// StatusError is a gRPC status other than OK (0).
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("rls: gRPC status %d (%s): %q", e.Code, codeName(e.Code), e.Message)
}

func (e *StatusError) Unwrap() error { return ErrStatus }

var grpcCodes = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

func codeName(c int) string {
	if c >= 0 && c < len(grpcCodes) {
		return grpcCodes[c]
	}
	return "?"
}

// MaxMessage bounds the grpc-message kept in a StatusError (it goes to logs).
const MaxMessage = 200

// CallStatus checks an answer's headers and trailers: HTTP status 200 and grpc-status 0.
// The status is read from the trailers, or from the headers when the answer is
// trailers-only. A missing grpc-status is an error (the exchange ended before the status),
// a non-zero one a *StatusError.
func CallStatus(headers, trailers [][2]string) error {
	st := lookup(headers, ":status")
	if st != "200" {
		return fmt.Errorf("%w: HTTP status %q", ErrHTTP, st)
	}
	code, msg, ok := "", "", false
	if code, ok = lookupOK(trailers, "grpc-status"); ok {
		msg = lookup(trailers, "grpc-message")
	} else if code, ok = lookupOK(headers, "grpc-status"); ok {
		msg = lookup(headers, "grpc-message")
	} else {
		return fmt.Errorf("%w: no grpc-status in the answer", ErrHTTP)
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 {
		return fmt.Errorf("%w: grpc-status %q", ErrHTTP, code)
	}
	if n == 0 {
		return nil
	}
	if len(msg) > MaxMessage {
		msg = msg[:MaxMessage]
	}
	return &StatusError{Code: n, Message: msg}
}

func lookup(h [][2]string, name string) string {
	v, _ := lookupOK(h, name)
	return v
}

func lookupOK(h [][2]string, name string) (string, bool) {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}
