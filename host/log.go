package host

import (
	"fmt"
	"time"
)

// LogSource says where a log line came from.
type LogSource string

// Log sources.
const (
	SourceProxyLog LogSource = "proxy_log" // env.proxy_log
	SourceStdout   LogSource = "stdout"    // fd_write to fd 1 (Envoy logs it at info)
	SourceStderr   LogSource = "stderr"    // fd_write to fd 2 (Envoy logs it at error)
	SourceHost     LogSource = "host"      // the host itself, e.g. about a WASI call it does not support
)

// LogEntry is one captured log line of a VM.
type LogEntry struct {
	Time    time.Time // the Runtime's wall clock
	Plugin  string
	VMID    string
	Worker  int // the worker's index; WorkerBase or WorkerCanary for those VMs
	Level   LogLevel
	Source  LogSource
	Message string
}

func (e LogEntry) String() string {
	return fmt.Sprintf("%s %s %s: %s", vmLabel(e.Plugin, e.VMID, e.Worker), e.Level, e.Source, e.Message)
}

var logFuncs = []hostFunc{
	// proxy_log(level, message_ptr, message_size) -> status
	//
	// Logs message_size bytes at message_ptr at level (0 trace .. 5 critical).
	//   - BAD_ARGUMENT: level above critical.
	//   - INVALID_MEMORY_ACCESS: the message is out of range.
	// Lines below Options.LogLevel are dropped, as Envoy's logger drops them.
	{name: "proxy_log", params: i32s(3), results: statusResult, fn: func(v *VM, s []uint64) {
		level := LogLevel(uint32(s[0]))
		if level > LogCritical {
			s[0] = uint64(StatusBadArgument)
			return
		}
		msg, ok := v.readString(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		v.logLocked(level, SourceProxyLog, msg)
		s[0] = uint64(StatusOK)
	}},
	// proxy_get_log_level(level_ptr) -> status
	//
	// Stores Options.LogLevel as a u32 at level_ptr.
	//   - INVALID_MEMORY_ACCESS: level_ptr is out of range.
	{name: "proxy_get_log_level", params: i32s(1), results: statusResult, fn: func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[0]), uint32(v.rt.opts.LogLevel)) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(StatusOK)
	}},
}

// writeOutput handles the guest's stdout/stderr as cpp-host's writevImpl does: one log line
// per fd_write, at info for stdout and error for stderr, with one trailing newline removed.
// The raw bytes also go to the current call's output, which errors quote.
func (v *VM) writeOutput(src LogSource, p []byte) {
	if len(p) == 0 {
		return
	}
	v.output.Write(p)
	msg := string(p)
	if msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
	}
	level := LogInfo
	if src == SourceStderr {
		level = LogError
	}
	v.record(level, src, msg)
}

// logLocked records a proxy_log line and adds it to the current call's output.
func (v *VM) logLocked(level LogLevel, src LogSource, msg string) {
	fmt.Fprintf(&v.output, "[%s] %s\n", level, msg)
	v.record(level, src, msg)
}

func (v *VM) record(level LogLevel, src LogSource, msg string) {
	o := &v.rt.opts
	if level < o.LogLevel {
		return
	}
	e := LogEntry{Time: v.rt.clock.Now(), Plugin: v.plugin.cfg.Name, VMID: v.plugin.cfg.VMID,
		Worker: v.worker, Level: level, Source: src, Message: msg}
	v.logMu.Lock()
	if len(v.logs) < o.LogCapacity {
		v.logs = append(v.logs, e)
	} else {
		v.logs[v.logAt] = e
		v.logAt = (v.logAt + 1) % len(v.logs)
	}
	v.logMu.Unlock()
	if o.LogSink != nil {
		o.LogSink(e)
	}
	if o.LogWriter != nil {
		v.rt.logWriterMu.Lock()
		fmt.Fprintln(o.LogWriter, e.String())
		v.rt.logWriterMu.Unlock()
	}
}

// Logs returns the VM's captured log lines, oldest first (at most Options.LogCapacity).
func (v *VM) Logs() []LogEntry {
	v.logMu.Lock()
	defer v.logMu.Unlock()
	out := make([]LogEntry, 0, len(v.logs))
	out = append(out, v.logs[v.logAt:]...)
	return append(out, v.logs[:v.logAt]...)
}
