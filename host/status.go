package host

import "fmt"

// Status is a proxy-wasm result code (WasmResult in proxy-wasm-cpp-host), returned by every
// env.proxy_* host function as its i32 result.
type Status uint32

// The statuses of ABI 0.2.1, numbered as in proxy-wasm-cpp-host's wasm_result.h.
const (
	StatusOK                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusBadExpression        Status = 5
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCasMismatch          Status = 8
	StatusResultMismatch       Status = 9
	StatusInternalFailure      Status = 10
	StatusBrokenConnection     Status = 11
	StatusUnimplemented        Status = 12
)

var statusNames = [...]string{"OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE",
	"PARSE_FAILURE", "BAD_EXPRESSION", "INVALID_MEMORY_ACCESS", "EMPTY", "CAS_MISMATCH",
	"RESULT_MISMATCH", "INTERNAL_FAILURE", "BROKEN_CONNECTION", "UNIMPLEMENTED"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint32(s))
}

// Action is what an HTTP callback returns (FilterHeadersStatus / FilterDataStatus in Envoy).
type Action uint32

const (
	// ActionContinue lets the stream go on to the next filter (or the upstream).
	ActionContinue Action = 0
	// ActionPause stops iteration until proxy_continue_stream, a local response, or the end.
	ActionPause Action = 1
)

func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "Continue"
	case ActionPause:
		return "Pause"
	}
	return fmt.Sprintf("Action(%d)", uint32(a))
}
