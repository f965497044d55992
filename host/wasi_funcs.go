package host

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
)

// The WASI functions proxy-wasm-cpp-host implements (src/exports.cc), each written once and
// listed by the profiles that offer it (wasi_profiles.go). Each returns a WASI errno; the
// comments give cpp-host's answer, which is what Envoy gives a module. Parameters are the
// 32-bit words and 64-bit integers of cpp-host's declarations (include/proxy-wasm/exports.h),
// which is what a module's import must match: for path_link and path_symlink these are
// shorter than WASI preview1's (see wasiPathLink).

// WASI errno values used here (wasi_snapshot_preview1).
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNoent   = 44
	errnoNosys   = 52
	errnoNotdir  = 20
	errnoNotsup  = 58
)

// randomGetMax is cpp-host's PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES (limits.h).
const randomGetMax = 64 << 10

var errnoResult = []api.ValueType{i32}

// wasiFn builds a WASI function of that many i32 parameters (or the given types).
func wasiFn(name string, params []api.ValueType, fn func(v *VM, s []uint64)) hostFunc {
	return hostFunc{name: name, params: params, results: errnoResult, fn: fn}
}

// answer is a function that only returns errno.
func answer(errno uint64) func(*VM, []uint64) {
	return func(_ *VM, s []uint64) { s[0] = errno }
}

// stdio reports whether fd is stdout or stderr, the only fds cpp-host knows.
func stdio(fd uint64) bool { return uint32(fd) == 1 || uint32(fd) == 2 }

// stdioOnly answers SUCCESS for fds 1 and 2 and EBADF for any other: the file operations that
// mean nothing for a log stream (sync, allocate, set size/times/rights).
func stdioOnly(_ *VM, s []uint64) {
	if stdio(s[0]) {
		s[0] = errnoSuccess
	} else {
		s[0] = errnoBadf
	}
}

// writev is cpp-host's writevImpl: it gathers the iovecs (each u32 buf, u32 len) and logs them
// as one line, fd 1 at info and fd 2 at error, one trailing newline removed, nothing when
// empty. It returns the byte count (before the newline is removed) or an errno: EBADF for any
// other fd, EFAULT for an iovec out of range.
func (v *VM) writev(fd, iovs, n uint32) (uint32, uint64) {
	src := SourceStdout
	switch fd {
	case 1:
	case 2:
		src = SourceStderr
	default:
		return 0, errnoBadf
	}
	var data []byte
	for i := uint32(0); i < n; i++ {
		iov, ok := v.mem.Read(iovs+i*8, 8)
		if !ok {
			return 0, errnoFault
		}
		ptr, size := binary.LittleEndian.Uint32(iov), binary.LittleEndian.Uint32(iov[4:])
		if size == 0 {
			continue
		}
		b, ok := v.mem.Read(ptr, size)
		if !ok {
			return 0, errnoFault
		}
		data = append(data, b...)
	}
	v.writeOutput(src, data)
	return uint32(len(data)), errnoSuccess
}

// logEnvoyTrace is what cpp-host's stubs do through ContextBase::error: Envoy's Context
// overrides it to log the message at trace in Envoy's own log, and the call goes on.
func (v *VM) logEnvoyTrace(msg string) { v.logLocked(LogTrace, SourceHost, msg) }

// The functions of cpp-host's commit of 2024-12-19 (present in both profiles).
var (
	// args_get(argv, argv_buf) -> SUCCESS without writing: there are no arguments.
	wasiArgsGet = wasiFn("args_get", i32s(2), answer(errnoSuccess))
	// args_sizes_get(argc_ptr, argv_buf_size_ptr) -> errno: stores 0 and 0 (u32).
	//   - EFAULT: a pointer is out of range.
	wasiArgsSizesGet = wasiFn("args_sizes_get", i32s(2), func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[0]), 0) || !v.writeU32(uint32(s[1]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	})
	// environ_get(environ, environ_buf) -> errno
	//
	// Writes PluginConfig.Env (Envoy's vm_config environment_variables) as "KEY=VALUE\0"
	// strings at environ_buf and their addresses (u32) at environ.
	//   - EFAULT: out of range.
	wasiEnvironGet = wasiFn("environ_get", i32s(2), func(v *VM, s []uint64) {
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
	})
	// environ_sizes_get(count_ptr, buf_size_ptr) -> errno: the number of variables and the
	// bytes environ_get needs (u32 each).
	//   - EFAULT: a pointer is out of range.
	wasiEnvironSizesGet = wasiFn("environ_sizes_get", i32s(2), func(v *VM, s []uint64) {
		size := 0
		for _, kv := range v.plugin.cfg.Env {
			size += len(kv[0]) + len(kv[1]) + 2
		}
		if !v.writeU32(uint32(s[0]), uint32(len(v.plugin.cfg.Env))) || !v.writeU32(uint32(s[1]), uint32(size)) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	})
	// clock_time_get(clock_id, precision i64, time_ptr) -> errno
	//
	// Stores the Runtime's clock as u64 nanoseconds: realtime (0) since the Unix epoch,
	// monotonic (1) from the clock's origin.
	//   - ENOTSUP: any other clock (the CPU-time clocks). EFAULT: time_ptr out of range.
	wasiClockTimeGet = wasiFn("clock_time_get", []api.ValueType{i32, i64, i32}, func(v *VM, s []uint64) {
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
	})
	// fd_write(fd, iovs, iovs_len, nwritten_ptr) -> errno
	//
	// Logs the iovecs as one line (see writev) and stores the byte count at nwritten_ptr (u32).
	//   - EBADF: an fd other than 1 and 2. EFAULT: an iovec or nwritten_ptr out of range.
	wasiFdWrite = wasiFn("fd_write", i32s(4), func(v *VM, s []uint64) {
		n, errno := v.writev(uint32(s[0]), uint32(s[1]), uint32(s[2]))
		if errno == errnoSuccess && !v.writeU32(uint32(s[3]), n) {
			errno = errnoFault
		}
		s[0] = errno
	})
	// fd_read(fd, iovs, iovs_len, nread_ptr) -> ENOSYS: no file can be read.
	wasiFdRead = wasiFn("fd_read", i32s(4), answer(errnoNosys))
	// fd_seek(fd, offset i64, whence, newoffset_ptr) -> SUCCESS without writing, after
	// logging "wasi_unstable fd_seek" at trace.
	wasiFdSeek = wasiFn("fd_seek", []api.ValueType{i32, i64, i32, i32}, func(v *VM, s []uint64) {
		v.logEnvoyTrace("wasi_unstable fd_seek")
		s[0] = errnoSuccess
	})
	// fd_close(fd) -> SUCCESS after logging "wasi_unstable fd_close" at trace.
	wasiFdClose = wasiFn("fd_close", i32s(1), func(v *VM, s []uint64) {
		v.logEnvoyTrace("wasi_unstable fd_close")
		s[0] = errnoSuccess
	})
	// fd_fdstat_get(fd, stat_ptr) -> errno
	//
	// Only fds 1 and 2: writes the 24-byte fdstat {filetype u8 = 0 (unknown), flags u16 = 0,
	// rights_base u64 = 64 (FD_WRITE), rights_inheriting u64 = 0}. As in cpp-host, a
	// stat_ptr out of range is not reported.
	//   - EBADF: any other fd (stdin included).
	wasiFdFdstatGet = wasiFn("fd_fdstat_get", i32s(2), func(v *VM, s []uint64) {
		if !stdio(s[0]) {
			s[0] = errnoBadf
			return
		}
		var stat [24]byte
		binary.LittleEndian.PutUint64(stat[8:], 64)
		v.mem.Write(uint32(s[1]), stat[:])
		s[0] = errnoSuccess
	})
	// fd_fdstat_set_flags(fd, flags) -> ENOSYS, for every fd.
	wasiFdFdstatSetFlags = wasiFn("fd_fdstat_set_flags", i32s(2), answer(errnoNosys))
	// fd_prestat_get(fd, prestat_ptr) -> EBADF: there are no pre-opened directories.
	wasiFdPrestatGet = wasiFn("fd_prestat_get", i32s(2), answer(errnoBadf))
	// fd_prestat_dir_name(fd, path_ptr, path_len) -> ENOSYS.
	wasiFdPrestatDirName = wasiFn("fd_prestat_dir_name", i32s(3), answer(errnoNosys))
	// path_open(fd, dirflags, path_ptr, path_len, oflags, rights_base i64,
	//           rights_inheriting i64, fdflags, fd_ptr) -> ENOENT: no file exists.
	wasiPathOpen = wasiFn("path_open", []api.ValueType{i32, i32, i32, i32, i32, i64, i64, i32, i32}, answer(errnoNoent))
	// random_get(buf, buf_len) -> errno: fills buf with cryptographic random bytes.
	//   - EINVAL: buf_len above 64 KiB. EFAULT: buf out of range.
	wasiRandomGet = wasiFn("random_get", i32s(2), func(v *VM, s []uint64) {
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
	})
	// sched_yield() -> SUCCESS: a VM has one thread; there is nothing to yield to.
	wasiSchedYield = wasiFn("sched_yield", nil, answer(errnoSuccess))
	// poll_oneoff(in, out, nsubscriptions, nevents_ptr) -> ENOSYS, as of 2024-12-19: the guest
	// cannot sleep or wait, and the Go runtime aborts when this fails (golang/go#78513), so a
	// Go plugin must never start a timer or sleep under this answer.
	wasiPollOneoffNosys = wasiFn("poll_oneoff", i32s(4), answer(errnoNosys))
	// proc_exit(code): logs "wasi_unstable proc_exit" at trace and returns, as cpp-host does;
	// the Go runtime then reaches an unreachable instruction, which traps the call.
	wasiProcExit = hostFunc{name: "proc_exit", params: i32s(1), fn: func(v *VM, s []uint64) {
		v.logEnvoyTrace("wasi_unstable proc_exit")
	}}
)

// The functions cpp-host added on 2026-04-06 (PR 533, commit 94091cd), and the new answer of
// poll_oneoff from the same PR.
var (
	// poll_oneoff(in, out, nsubscriptions, nevents_ptr) -> SUCCESS after storing 0 (u32) at
	// nevents_ptr, at once, whatever the subscriptions: nothing ever waits, nothing is written
	// to out. The Go runtime needs SUCCESS here (golang/go#78513); a sleep returns early.
	//   - EFAULT: nevents_ptr out of range.
	wasiPollOneoffNoEvents = wasiFn("poll_oneoff", i32s(4), func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[3]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	})
	// clock_res_get(clock_id, resolution_ptr) -> errno: 1 (u64 nanoseconds) for realtime (0)
	// and monotonic (1).
	//   - ENOTSUP: any other clock. EFAULT: resolution_ptr out of range.
	wasiClockResGet = wasiFn("clock_res_get", i32s(2), func(v *VM, s []uint64) {
		if c := uint32(s[0]); c != 0 && c != 1 {
			s[0] = errnoNotsup
			return
		}
		if !v.writeU64(uint32(s[1]), 1) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	})
	// fd_advise(fd, offset i64, len i64, advice) -> SUCCESS for every fd: advice is a hint.
	wasiFdAdvise = wasiFn("fd_advise", []api.ValueType{i32, i64, i64, i32}, answer(errnoSuccess))
	// fd_allocate(fd, offset i64, len i64) -> SUCCESS for fds 1 and 2, else EBADF.
	wasiFdAllocate = wasiFn("fd_allocate", []api.ValueType{i32, i64, i64}, stdioOnly)
	// fd_datasync(fd) -> SUCCESS for fds 1 and 2, else EBADF.
	wasiFdDatasync = wasiFn("fd_datasync", i32s(1), stdioOnly)
	// fd_fdstat_set_rights(fd, rights_base i64, rights_inheriting i64) -> SUCCESS for fds 1
	// and 2 (nothing changes), else EBADF.
	wasiFdFdstatSetRights = wasiFn("fd_fdstat_set_rights", []api.ValueType{i32, i64, i64}, stdioOnly)
	// fd_filestat_get(fd, filestat_ptr) -> EBADF for every fd, stdout and stderr included.
	wasiFdFilestatGet = wasiFn("fd_filestat_get", i32s(2), answer(errnoBadf))
	// fd_filestat_set_size(fd, size i64) -> SUCCESS for fds 1 and 2, else EBADF.
	wasiFdFilestatSetSize = wasiFn("fd_filestat_set_size", []api.ValueType{i32, i64}, stdioOnly)
	// fd_filestat_set_times(fd, atim i64, mtim i64, fst_flags) -> SUCCESS for fds 1 and 2,
	// else EBADF.
	wasiFdFilestatSetTimes = wasiFn("fd_filestat_set_times", []api.ValueType{i32, i64, i64, i32}, stdioOnly)
	// fd_pread(fd, iovs, iovs_len, offset i64, nread_ptr) -> ENOSYS.
	wasiFdPread = wasiFn("fd_pread", []api.ValueType{i32, i32, i32, i64, i32}, answer(errnoNosys))
	// fd_pwrite(fd, iovs, iovs_len, offset i64, nwritten_ptr) -> errno: fd_write, the offset
	// ignored.
	//   - EBADF: an fd other than 1 and 2. EFAULT: an iovec or nwritten_ptr out of range.
	wasiFdPwrite = wasiFn("fd_pwrite", []api.ValueType{i32, i32, i32, i64, i32}, func(v *VM, s []uint64) {
		n, errno := v.writev(uint32(s[0]), uint32(s[1]), uint32(s[2]))
		if errno == errnoSuccess && !v.writeU32(uint32(s[4]), n) {
			errno = errnoFault
		}
		s[0] = errno
	})
	// fd_readdir(fd, buf, buf_len, cookie i64, bufused_ptr) -> ENOTDIR after storing 0 (u32)
	// at bufused_ptr, for every fd.
	//   - EFAULT: bufused_ptr out of range.
	wasiFdReaddir = wasiFn("fd_readdir", []api.ValueType{i32, i32, i32, i64, i32}, func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[4]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoNotdir
	})
	// fd_renumber(fd, to) -> ENOTSUP when both are 1 or 2, else EBADF.
	wasiFdRenumber = wasiFn("fd_renumber", i32s(2), func(v *VM, s []uint64) {
		if !stdio(s[0]) || !stdio(s[1]) {
			s[0] = errnoBadf
			return
		}
		s[0] = errnoNotsup
	})
	// fd_sync(fd) -> SUCCESS for fds 1 and 2, else EBADF.
	wasiFdSync = wasiFn("fd_sync", i32s(1), stdioOnly)
	// fd_tell(fd, offset_ptr) -> SUCCESS after storing 0 (u64) for fds 1 and 2.
	//   - EBADF: any other fd. EFAULT: offset_ptr out of range.
	wasiFdTell = wasiFn("fd_tell", i32s(2), func(v *VM, s []uint64) {
		if !stdio(s[0]) {
			s[0] = errnoBadf
			return
		}
		if !v.writeU64(uint32(s[1]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoSuccess
	})
	// path_create_directory(fd, path_ptr, path_len) -> ENOTSUP.
	wasiPathCreateDirectory = wasiFn("path_create_directory", i32s(3), answer(errnoNotsup))
	// path_filestat_get(fd, flags, path_ptr, path_len, filestat_ptr) -> ENOTSUP.
	wasiPathFilestatGet = wasiFn("path_filestat_get", i32s(5), answer(errnoNotsup))
	// path_filestat_set_times(fd, flags, path_ptr, path_len, atim i64, mtim i64, fst_flags)
	// -> ENOTSUP.
	wasiPathFilestatSetTimes = wasiFn("path_filestat_set_times", []api.ValueType{i32, i32, i32, i32, i64, i64, i32}, answer(errnoNotsup))
	// path_link(old_fd, old_flags, old_path_ptr, old_path_len, new_fd, new_path_ptr) ->
	// ENOTSUP. cpp-host declares six words where WASI preview1 has seven (new_path_len), so
	// a module importing path_link with WASI's signature fails to load ("import type
	// mismatch"), as it would in Envoy.
	wasiPathLink = wasiFn("path_link", i32s(6), answer(errnoNotsup))
	// path_readlink(fd, path_ptr, path_len, buf, buf_len, bufused_ptr) -> ENOTSUP after
	// storing 0 (u32) at bufused_ptr.
	//   - EFAULT: bufused_ptr out of range.
	wasiPathReadlink = wasiFn("path_readlink", i32s(6), func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[5]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoNotsup
	})
	// path_remove_directory(fd, path_ptr, path_len) -> ENOTSUP.
	wasiPathRemoveDirectory = wasiFn("path_remove_directory", i32s(3), answer(errnoNotsup))
	// path_rename(fd, old_path_ptr, old_path_len, new_fd, new_path_ptr, new_path_len) ->
	// ENOTSUP.
	wasiPathRename = wasiFn("path_rename", i32s(6), answer(errnoNotsup))
	// path_symlink(old_path_ptr, old_path_len, fd, new_path_ptr) -> ENOTSUP. Four words where
	// WASI preview1 has five (new_path_len): WASI's signature fails to load, as in Envoy.
	wasiPathSymlink = wasiFn("path_symlink", i32s(4), answer(errnoNotsup))
	// path_unlink_file(fd, path_ptr, path_len) -> ENOTSUP.
	wasiPathUnlinkFile = wasiFn("path_unlink_file", i32s(3), answer(errnoNotsup))
	// sock_accept(fd, flags, fd_ptr) -> ENOTSUP after storing 0 at fd_ptr as a u64 (8 bytes,
	// where WASI's fd is 4: cpp-host writes an unsigned long).
	//   - EFAULT: fd_ptr out of range (8 bytes).
	wasiSockAccept = wasiFn("sock_accept", i32s(3), func(v *VM, s []uint64) {
		if !v.writeU64(uint32(s[2]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoNotsup
	})
	// sock_recv(fd, ri_data, ri_data_len, ri_flags, nread_ptr, roflags_ptr) -> ENOTSUP after
	// storing 0 at nread_ptr (u32) and at roflags_ptr (u16).
	//   - EFAULT: either pointer out of range (nread_ptr checked and written first).
	wasiSockRecv = wasiFn("sock_recv", i32s(6), func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[4]), 0) || !v.mem.WriteUint16Le(uint32(s[5]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoNotsup
	})
	// sock_send(fd, si_data, si_data_len, si_flags, nsent_ptr) -> ENOTSUP after storing 0
	// (u32) at nsent_ptr.
	//   - EFAULT: nsent_ptr out of range.
	wasiSockSend = wasiFn("sock_send", i32s(5), func(v *VM, s []uint64) {
		if !v.writeU32(uint32(s[4]), 0) {
			s[0] = errnoFault
			return
		}
		s[0] = errnoNotsup
	})
	// sock_shutdown(fd, how) -> ENOTSUP.
	wasiSockShutdown = wasiFn("sock_shutdown", i32s(2), answer(errnoNotsup))
)

// cppHostEnvFuncs are the two env functions cpp-host registers besides proxy_* for modules
// built with Emscripten (WasmBase::registerCallbacks), at both commits.
var cppHostEnvFuncs = []hostFunc{
	// pthread_equal(left, right) -> 1 when left == right, else 0.
	{name: "pthread_equal", params: i32s(2), results: []api.ValueType{i32}, fn: func(_ *VM, s []uint64) {
		if uint32(s[0]) == uint32(s[1]) {
			s[0] = 1
		} else {
			s[0] = 0
		}
	}},
	// emscripten_notify_memory_growth(memory_index): does nothing.
	{name: "emscripten_notify_memory_growth", params: i32s(1), fn: func(*VM, []uint64) {}},
}
