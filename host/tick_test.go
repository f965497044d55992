package host

import (
	"context"
	"testing"
	"time"
)

func TestTick(t *testing.T) {
	rt := newRuntime(t, Options{})
	ticking := newPlugin(t, rt, "abi", PluginConfig{Name: "ticking", Configuration: []byte("tick=250")})
	quiet := newPlugin(t, rt, "abi", PluginConfig{Name: "quiet"})
	v := ticking.VMs()[0]
	if got := v.TickPeriod(); got != 250*time.Millisecond {
		t.Fatalf("TickPeriod = %v, want 250ms", got)
	}
	for i := 0; i < 3; i++ {
		if ticked, err := v.Tick(context.Background()); !ticked || err != nil {
			t.Fatalf("Tick = %v, %v; want true, nil", ticked, err)
		}
	}
	if ticked, err := quiet.VMs()[0].Tick(context.Background()); ticked || err != nil {
		t.Errorf("Tick without a period = %v, %v; want false, nil", ticked, err)
	}
	var up recorder
	if _, err := v.Do(context.Background(), get("ticks"), up.upstream); err != nil {
		t.Fatal(err)
	}
	if got := resultOf(t, up.last(t), "ticks"); got != "3" {
		t.Errorf("guest counted %s ticks, want 3", got)
	}
}

// TickDue follows the Runtime's clock: a tick is due one period after the last.
func TestTickDue(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	rt := newRuntime(t, Options{Clock: clock})
	v := newPlugin(t, rt, "abi", PluginConfig{Configuration: []byte("tick=1000")}).VMs()[0]
	steps := []struct {
		advance time.Duration
		want    bool
	}{{0, false}, {999 * time.Millisecond, false}, {time.Millisecond, true}, {time.Millisecond, false}, {time.Hour, true}, {0, false}}
	for i, st := range steps {
		clock.Advance(st.advance)
		if got, err := v.TickDue(context.Background()); got != st.want || err != nil {
			t.Errorf("step %d (+%v): TickDue = %v, %v; want %v", i, st.advance, got, err, st.want)
		}
	}
}

// The wall clock the guest reads (Go's time.Now through WASI clock_time_get) is the
// Runtime's clock.
func TestFakeClock(t *testing.T) {
	start := time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC)
	clock := NewFakeClock(start)
	rt := newRuntime(t, Options{Clock: clock})
	p := newPlugin(t, rt, "abi", PluginConfig{})
	var up recorder
	for _, step := range []time.Duration{0, time.Second, 24 * time.Hour, -time.Hour} {
		clock.Advance(step)
		if _, err := p.Do(context.Background(), get("now"), up.upstream); err != nil {
			t.Fatal(err)
		}
		if got, want := resultOf(t, up.last(t), "now"), clock.Now().UnixNano(); got != itoa(want) {
			t.Errorf("after %v: guest time %s, want %d", step, got, want)
		}
	}
}
