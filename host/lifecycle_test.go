package host

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	rt := newRuntime(t, Options{})
	p := newPlugin(t, rt, "abi", PluginConfig{Configuration: []byte("hello")})
	var up recorder
	resp, err := p.Do(context.Background(), get("config"), up.upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resp %+v", resp)
	t.Logf("req %+v", up.last(t).Headers)
	t.Logf("logs %s", joinLogs(p.Logs()))
	t.Logf("wasi %v", p.VMs()[0].WASICalls())
}
