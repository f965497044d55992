package host

import (
	"bytes"
	"context"
	"sync"
	"testing"
)

func TestLogs(t *testing.T) {
	var mu sync.Mutex
	var sunk []LogEntry
	var written bytes.Buffer
	rt := newRuntime(t, Options{LogLevel: LogDebug, LogSink: func(e LogEntry) {
		mu.Lock()
		defer mu.Unlock()
		sunk = append(sunk, e)
	}, LogWriter: &written})
	p := newPlugin(t, rt, "abi", PluginConfig{Name: "logs", VMID: "lv"})
	var up recorder
	if _, err := p.Do(context.Background(), get("log"), up.upstream); err != nil {
		t.Fatal(err)
	}
	want := "info proxy_log: configured: \"\"\n" +
		"debug proxy_log: msg-debug\n" + // trace is below the level
		"info proxy_log: msg-info\n" +
		"warn proxy_log: msg-warn\n" +
		"error proxy_log: msg-error\n" +
		"critical proxy_log: msg-critical\n" +
		"error stderr: to-stderr\n" // println goes to fd 2, one line per fd_write
	if got := joinLogs(p.VMs()[0].Logs()); got != want {
		t.Errorf("VM logs\n got %s\nwant %s", got, want)
	}
	mu.Lock()
	// The sink also saw the canary VM's line (Worker WorkerCanary), before the worker's.
	if len(sunk) == 0 || sunk[0].Worker != WorkerCanary || sunk[0].String() != `logs lv#canary info proxy_log: configured: ""` {
		t.Errorf("first line to the sink %+v, want the canary's", sunk)
	} else {
		sunk = sunk[1:]
	}
	if got := joinLogs(sunk); got != want {
		t.Errorf("LogSink received\n%s\nwant\n%s", got, want)
	}
	mu.Unlock()
	if got, wantLine := written.String(), "logs lv#0 critical proxy_log: msg-critical\n"; !bytes.Contains([]byte(got), []byte(wantLine)) {
		t.Errorf("LogWriter got\n%s\nwithout %q", got, wantLine)
	}
}

func TestLogCapacity(t *testing.T) {
	rt := newRuntime(t, Options{LogCapacity: 3})
	v := probeVM(t, rt, PluginConfig{}, envImport("proxy_log"))
	poke(t, v, 0, []byte("abcde"))
	for i := uint64(0); i < 5; i++ {
		if st := Status(callIn(t, v, rootContextID, "proxy_log", 2, i, 1)); st != StatusOK {
			t.Fatal(st)
		}
	}
	if got := joinLogs(v.Logs()); got != "info proxy_log: c\ninfo proxy_log: d\ninfo proxy_log: e\n" {
		t.Errorf("kept logs = %q, want the last three", got)
	}
	if st := Status(callIn(t, v, rootContextID, "proxy_log", 6, 0, 1)); st != StatusBadArgument {
		t.Errorf("level 6 = %v, want BAD_ARGUMENT", st)
	}
	if st := Status(callIn(t, v, rootContextID, "proxy_log", 2, 65535, 2)); st != StatusInvalidMemoryAccess {
		t.Errorf("message out of memory = %v, want INVALID_MEMORY_ACCESS", st)
	}
}
