//go:build !linux

package rlstest

import (
	"syscall"
	"time"
)

// procAttr puts the child in its own process group; without Linux's Pdeathsig a killed test
// binary can leave it running.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// waitStopped gives a SIGSTOPped process a moment to stop (no /proc to look at).
func waitStopped(int) { time.Sleep(100 * time.Millisecond) }
