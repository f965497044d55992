package host

import (
	"context"
	"time"
)

var tickFuncs = []hostFunc{
	// proxy_set_tick_period_milliseconds(period_ms) -> status
	//
	// Sets the period of proxy_on_tick for the VM's current root context (Envoy uses the
	// root context whatever context calls; after VM.Configure only the new root context
	// ticks, a deviation for the draining one); 0 stops the ticks. The host fires no timer of its own: tests
	// call VM.Tick or VM.TickDue, the gateway runs Plugin.RunTicks. Always OK.
	{name: "proxy_set_tick_period_milliseconds", params: i32s(1), results: statusResult, fn: func(v *VM, s []uint64) {
		v.tickPeriod = time.Duration(uint32(s[0])) * time.Millisecond
		v.lastTick = v.rt.clock.Now()
		s[0] = uint64(StatusOK)
	}},
	// proxy_get_current_time_nanoseconds(time_ptr) -> status
	//
	// Stores the Runtime's wall clock as u64 nanoseconds since the Unix epoch at time_ptr.
	//   - INVALID_MEMORY_ACCESS: time_ptr is out of range.
	{name: "proxy_get_current_time_nanoseconds", params: i32s(1), results: statusResult, fn: func(v *VM, s []uint64) {
		if !v.writeU64(uint32(s[0]), uint64(v.rt.clock.Now().UnixNano())) {
			s[0] = uint64(StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(StatusOK)
	}},
}

// TickPeriod is the period the guest asked for with proxy_set_tick_period_milliseconds; 0
// means no ticks.
func (v *VM) TickPeriod() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tickPeriod
}

// Tick calls proxy_on_tick on the current root context if the guest set a tick period, and reports
// whether it did. A trap fails the VM and is returned.
func (v *VM) Tick(ctx context.Context) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tickLocked()
}

func (v *VM) tickLocked() (bool, error) {
	if err := v.usableLocked(); err != nil {
		return false, err
	}
	if v.tickPeriod == 0 {
		return false, nil
	}
	v.lastTick = v.rt.clock.Now()
	_, err := v.call(v.fns.tick, "proxy_on_tick", v.root, uint64(v.root))
	return err == nil, err
}

// TickDue ticks the VM if its period has elapsed on the Runtime's clock since its last tick
// (or since it set the period), and reports whether it did.
func (v *VM) TickDue(ctx context.Context) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tickPeriod == 0 || v.rt.clock.Now().Sub(v.lastTick) < v.tickPeriod {
		return false, nil
	}
	return v.tickLocked()
}

// RunTicks drives the plugin's ticks the way Envoy's timers do, until ctx ends: every
// interval of real time it calls TickDue on each current VM. The gateway runs it in a
// goroutine; tests call Tick or TickDue instead.
func (p *Plugin) RunTicks(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, v := range p.VMs() {
				v.TickDue(ctx)
			}
		}
	}
}
