package host

import (
	"context"
	"crypto/rand"
	"encoding/binary"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

const wasiModuleName = wasi_snapshot_preview1.ModuleName

// WASI errno values used here (wasi_snapshot_preview1).
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNoent   = 44
	errnoNosys   = 52
	errnoNotsup  = 58
)

// randomGetMax is cpp-host's PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES.
const randomGetMax = 64 << 10

// wasiNames are the WASI functions proxy-wasm-cpp-host offers at its commit of 2024-12-19,
// the only ones a module may import under either profile.
var wasiNames = [...]string{
	"args_get", "args_sizes_get", "clock_time_get", "environ_get", "environ_sizes_get",
	"fd_close", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_prestat_dir_name", "fd_prestat_get",
	"fd_read", "fd_seek", "fd_write", "path_open", "poll_oneoff", "proc_exit", "random_get",
	"sched_yield",
}

const wasiFuncCount = len(wasiNames)

var wasiIndex = func() map[string]int {
	m := map[string]int{}
	for i, n := range wasiNames {
		m[n] = i
	}
	return m
}()

func wasiFunctionOffered(name string) bool {
	_, ok := wasiIndex[name]
	return ok
}

// wasiFuncs are the signatures of the WASI functions a module may import (the same under
// both profiles: they are the preview1 signatures).
var wasiFuncs = func() map[string]hostFunc {
	m := map[string]hostFunc{}
	for _, f := range envoyWASI {
		m[f.name] = f
	}
	return m
}()

// WASICalls returns how many times the guest called each WASI function (functions never
// called are absent). Safe to call at any time.
func (v *VM) WASICalls() map[string]uint64 {
	out := map[string]uint64{}
	for i := range v.wasiCounts {
		if n := v.wasiCounts[i].Load(); n > 0 {
			out[wasiNames[i]] = n
		}
	}
	return out
}

func (v *VM) countWASI(name string) {
	if i, ok := wasiIndex[name]; ok {
		v.wasiCounts[i].Add(1)
	}
}

func instantiateWASI(ctx context.Context, wz wazero.Runtime, profile WASIProfile) (api.Module, error) {
	b := wz.NewHostModuleBuilder(wasiModuleName)
	if profile == WASICurrent {
		// wazero's implementation, counted by a listener on the host functions only, so the
		// guest's own code is compiled without listeners.
		wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
		// wazero answers ENOSYS for the stdio this host gives a VM (not *os.File); a VM's
		// stdio never blocks, so setting its flags succeeds. There are no other files.
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) {
				if fd := uint32(s[0]); fd <= 2 {
					s[0] = errnoSuccess
				} else {
					s[0] = errnoBadf
				}
			}), i32s(2), errnoResult).
			WithName("fd_fdstat_set_flags").
			Export("fd_fdstat_set_flags")
		ctx = experimental.WithFunctionListenerFactory(ctx, wasiCounter{})
		return b.Instantiate(ctx)
	}
	for _, f := range envoyWASI {
		fn, name, full := f.fn, f.name, wasiModuleName+"."+f.name
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
				v := vmFrom(ctx)
				v.checkRestricted(full)
				v.countWASI(name)
				fn(v, stack)
			}), f.params, f.results).
			WithName(name).
			Export(name)
	}
	return b.Instantiate(ctx)
}

type wasiCounter struct{}

func (wasiCounter) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	name := def.Name()
	if !wasiFunctionOffered(name) {
		return nil
	}
	full := wasiModuleName + "." + name
	return experimental.FunctionListenerFunc(func(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
		if v, ok := ctx.Value(vmKey{}).(*VM); ok {
			v.checkRestricted(full)
			v.countWASI(name)
		}
	})
}

var errnoResult = []api.ValueType{i32}

// envoyWASI is the envoy-1.33 profile: proxy-wasm-cpp-host's WASI functions with its
// behaviour. Each returns a WASI errno.
var envoyWASI = []hostFunc{
	// args_get(argv, argv_buf) -> errno: there are no arguments; SUCCESS without writing.
	{name: "args_get", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoSuccess
	}},
	// args_sizes_get(argc_ptr, argv_buf_size_ptr) -> errno: stores 0 and 0 (u32).
	//   - EFAULT: a pointer is out of range.
	{name: "args_sizes_get", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[0]), 0) || !v.writeU32(uint32(s[1]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	}},
	// environ_get(environ, environ_buf) -> errno
	//
	// Writes PluginConfig.Env (Envoy's vm_config environment_variables) as "KEY=VALUE\0"
	// strings at environ_buf and their addresses (u32) at environ.
	//   - EFAULT: out of range.
	{name: "environ_get", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		arr, buf := uint32(s[0]), uint32(s[1])
		for _, kv := range v.plugin.cfg.Env {
			entry := kv[0] + "=" + kv[1] + "\x00"
			if !v.writeU32(arr, buf) || !v.mem.WriteString(buf, entry) {
				s[0] = errnoFault
				return
			}
			arr += 4
			buf += uint32(len(entry))
		}
		s[0] = errnoSuccess
	}},
	// environ_sizes_get(count_ptr, buf_size_ptr) -> errno: the number of variables and the
	// bytes environ_get needs (u32 each).
	//   - EFAULT: a pointer is out of range.
	{name: "environ_sizes_get", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		size := 0
		for _, kv := range v.plugin.cfg.Env {
			size += len(kv[0]) + len(kv[1]) + 2
		}
		if !v.writeU32(uint32(s[0]), uint32(len(v.plugin.cfg.Env))) || !v.writeU32(uint32(s[1]), uint32(size)) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	}},
	// clock_time_get(clock_id, precision i64, time_ptr) -> errno
	//
	// Stores the Runtime's clock as u64 nanoseconds: realtime (0) since the Unix epoch,
	// monotonic (1) from the clock's origin.
	//   - ENOTSUP: any other clock (the CPU-time clocks). EFAULT: time_ptr out of range.
	{name: "clock_time_get", params: []api.ValueType{i32, i64, i32}, results: errnoResult, fn: func(v *VM, s []uint64) {
		var t uint64
		switch uint32(s[0]) {
		case 0:
			t = uint64(v.rt.clock.Now().UnixNano())
		case 1:
			t = uint64(v.rt.clock.Nanotime())
		default:
			s[0] = errnoNotsup
			return
		}
		if !v.writeU64(uint32(s[2]), t) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	}},
	// fd_write(fd, iovs, iovs_len, nwritten_ptr) -> errno
	//
	// Gathers the iovecs (each u32 buf, u32 len) and logs them as one line: fd 1 at info,
	// fd 2 at error, one trailing newline removed. The byte count goes to nwritten_ptr (u32).
	//   - EBADF: any other fd. EFAULT: an iovec or nwritten_ptr out of range.
	{name: "fd_write", params: i32s(4), results: errnoResult, fn: func(v *VM, s []uint64) {
		fd, iovs, n := uint32(s[0]), uint32(s[1]), uint32(s[2])
		src := SourceStdout
		switch fd {
		case 1:
		case 2:
			src = SourceStderr
		default:
			s[0] = errnoBadf
			return
		}
		var data []byte
		for i := uint32(0); i < n; i++ {
			iov, ok := v.mem.Read(iovs+i*8, 8)
			if !ok {
				s[0] = errnoFault
				return
			}
			ptr, size := binary.LittleEndian.Uint32(iov), binary.LittleEndian.Uint32(iov[4:])
			if size == 0 {
				continue
			}
			b, ok := v.mem.Read(ptr, size)
			if !ok {
				s[0] = errnoFault
				return
			}
			data = append(data, b...)
		}
		v.writeOutput(src, data)
		if !v.writeU32(uint32(s[3]), uint32(len(data))) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	}},
	// fd_read(fd, iovs, iovs_len, nread_ptr) -> ENOSYS: no file can be read.
	{name: "fd_read", params: i32s(4), results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoNosys
	}},
	// fd_seek(fd, offset i64, whence, newoffset_ptr) -> SUCCESS without writing, after
	// logging "wasi_unstable fd_seek" at error, as cpp-host does.
	{name: "fd_seek", params: []api.ValueType{i32, i64, i32, i32}, results: errnoResult, fn: func(v *VM, s []uint64) {
		v.logLocked(LogError, SourceHost, "wasi_unstable fd_seek")
		s[0] = errnoSuccess
	}},
	// fd_close(fd) -> SUCCESS after logging "wasi_unstable fd_close" at error.
	{name: "fd_close", params: i32s(1), results: errnoResult, fn: func(v *VM, s []uint64) {
		v.logLocked(LogError, SourceHost, "wasi_unstable fd_close")
		s[0] = errnoSuccess
	}},
	// fd_fdstat_get(fd, stat_ptr) -> errno
	//
	// Only fds 1 and 2: writes the 24-byte fdstat {filetype u8 = 0 (unknown), flags u16 = 0,
	// rights_base u64 = 64 (FD_WRITE), rights_inheriting u64 = 0}. As in cpp-host, a
	// stat_ptr out of range is not reported.
	//   - EBADF: any other fd (stdin included).
	{name: "fd_fdstat_get", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		if fd := uint32(s[0]); fd != 1 && fd != 2 {
			s[0] = errnoBadf
			return
		}
		var stat [24]byte
		binary.LittleEndian.PutUint64(stat[8:], 64)
		v.mem.Write(uint32(s[1]), stat[:])
		s[0] = errnoSuccess
	}},
	// fd_fdstat_set_flags(fd, flags) -> ENOSYS.
	{name: "fd_fdstat_set_flags", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoNosys
	}},
	// fd_prestat_get(fd, prestat_ptr) -> EBADF: there are no pre-opened directories.
	{name: "fd_prestat_get", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoBadf
	}},
	// fd_prestat_dir_name(fd, path_ptr, path_len) -> ENOSYS.
	{name: "fd_prestat_dir_name", params: i32s(3), results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoNosys
	}},
	// path_open(fd, dirflags, path_ptr, path_len, oflags, rights_base i64,
	//           rights_inheriting i64, fdflags, fd_ptr) -> ENOENT: no file exists.
	{name: "path_open", params: []api.ValueType{i32, i32, i32, i32, i32, i64, i64, i32, i32}, results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoNoent
	}},
	// random_get(buf, buf_len) -> errno: fills buf with cryptographic random bytes.
	//   - EINVAL: buf_len above 64 KiB. EFAULT: buf out of range.
	{name: "random_get", params: i32s(2), results: errnoResult, fn: func(v *VM, s []uint64) {
		n := uint32(s[1])
		if n > randomGetMax {
			s[0] = errnoInval
			return
		}
		if n == 0 {
			s[0] = errnoSuccess
			return
		}
		b := make([]byte, n)
		rand.Read(b)
		if !v.mem.Write(uint32(s[0]), b) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	}},
	// sched_yield() -> SUCCESS: a VM has one thread; there is nothing to yield to.
	{name: "sched_yield", params: nil, results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoSuccess
	}},
	// poll_oneoff(in, out, nsubscriptions, nevents_ptr) -> ENOSYS: the guest cannot sleep or
	// wait. (The Go runtime aborts when this fails, which is why the plugin must never start
	// timers: golang/go#78513.)
	{name: "poll_oneoff", params: i32s(4), results: errnoResult, fn: func(v *VM, s []uint64) {
		s[0] = errnoNosys
	}},
	// proc_exit(code): logs "wasi_unstable proc_exit" at error and returns, as cpp-host does;
	// the Go runtime then reaches an unreachable instruction, which traps the call.
	{name: "proc_exit", params: i32s(1), results: nil, fn: func(v *VM, s []uint64) {
		v.logLocked(LogError, SourceHost, "wasi_unstable proc_exit")
	}},
}
