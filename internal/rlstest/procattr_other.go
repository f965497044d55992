//go:build !linux

package rlstest

import "syscall"

// procAttr puts the child in its own process group; without Linux's Pdeathsig a killed test
// binary can leave it running.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
