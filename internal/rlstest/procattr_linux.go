package rlstest

import "syscall"

// procAttr puts the child in its own process group, and has the kernel kill it when the
// test binary dies (a timeout's panic or a signal runs no t.Cleanup).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
