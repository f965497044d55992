package rlstest

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// These tests pin down what the real RLS and Redis do, the facts of the package doc. They
// use RLS's generated gRPC client; the filter's own codec is tested against RLS elsewhere.

// dayDescriptor is plan=gold, key=<id> with a per-descriptor limit of limit per DAY, and
// hits_addend set when hits >= 0.
func dayDescriptor(id string, limit uint32, hits int) *rlcommon.RateLimitDescriptor {
	d := &rlcommon.RateLimitDescriptor{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "plan", Value: "gold"}, {Key: "key", Value: id}}}
	if limit > 0 {
		d.Limit = &rlcommon.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: limit, Unit: typev3.RateLimitUnit_DAY}
	}
	if hits >= 0 {
		d.HitsAddend = wrapperspb.UInt64(uint64(hits))
	}
	return d
}

func client(t *testing.T, env *Env) rls.RateLimitServiceClient { return env.RLS.Client(t) }

func ask(c rls.RateLimitServiceClient, timeout time.Duration, domain string, ds ...*rlcommon.RateLimitDescriptor) (*rls.RateLimitResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.ShouldRateLimit(ctx, &rls.RateLimitRequest{Domain: domain, Descriptors: ds})
}

// untilMidnight is the whole seconds from now to the next UTC midnight, and that day's start.
func untilMidnight(now time.Time) (int64, int64) {
	day := now.UTC().Truncate(24 * time.Hour)
	return day.Add(24*time.Hour).Unix() - now.Unix(), day.Unix()
}

func TestFactsCounting(t *testing.T) {
	env := Start(t, Options{})
	c := client(t, env)
	// Each step: hits_addend (-1: absent), then the answer: code, limit_remaining, Redis count.
	steps := []struct {
		hits      int
		code      rls.RateLimitResponse_Code
		remaining uint32
		count     string
	}{
		{-1, rls.RateLimitResponse_OK, 2, "1"},        // absent: the request's hits_addend 0, read as 1
		{0, rls.RateLimitResponse_OK, 2, "1"},         // 0: check only
		{2, rls.RateLimitResponse_OK, 0, "3"},         // N: adds N, exactly at the limit is OK
		{1, rls.RateLimitResponse_OVER_LIMIT, 0, "4"}, // refused, and counted all the same
		{0, rls.RateLimitResponse_OVER_LIMIT, 0, "4"}, // a check over the limit says OVER_LIMIT
	}
	for i, s := range steps {
		before := time.Now()
		resp, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("k1", 3, s.hits))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		reset, dayStart := untilMidnight(before)
		if resp.OverallCode != s.code || len(resp.Statuses) != 1 {
			t.Fatalf("step %d: %v, want overall %v and one status", i, resp, s.code)
		}
		st := resp.Statuses[0]
		if st.Code != s.code || st.LimitRemaining != s.remaining ||
			st.CurrentLimit.GetRequestsPerUnit() != 3 || st.CurrentLimit.GetUnit() != rls.RateLimitResponse_RateLimit_DAY {
			t.Errorf("step %d: status %v, want %v, remaining %d, limit 3/DAY", i, st, s.code, s.remaining)
		}
		// duration_until_reset: to the end of the UTC day, whole seconds (1 s of slack for
		// the call crossing a second).
		if got := st.DurationUntilReset.GetSeconds(); got != reset && got != reset-1 {
			t.Errorf("step %d: duration_until_reset %ds, want %ds", i, got, reset)
		}
		key := "usageplans_plan_gold_key_k1_" + strconv.FormatInt(dayStart, 10)
		if got, err := env.Redis.Do("GET", key); err != nil || got != s.count {
			t.Errorf("step %d: Redis %s = %q (%v), want %s", i, key, got, err, s.count)
		}
	}
	keys, err := env.Redis.Do("KEYS", "*")
	if err != nil || strings.Count(keys, "\n") != 0 || !strings.HasPrefix(keys, "usageplans_plan_gold_key_k1_") {
		t.Errorf("Redis keys %q (%v), want one usageplans_plan_gold_key_k1_<day start>", keys, err)
	}
	// The TTL is the unit plus up to EXPIRATION_JITTER_MAX_SECONDS (300), from the first hit:
	// not the end of the window.
	if ttl, _ := env.Redis.Do("TTL", keys); ttl < "86100" || len(ttl) != 5 || ttl > "86700" {
		t.Errorf("TTL %s, want 86100..86700", ttl)
	}

	t.Run("no limit and no config entry: not counted", func(t *testing.T) {
		resp, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("k2", 0, 1))
		if err != nil || resp.OverallCode != rls.RateLimitResponse_OK || len(resp.Statuses) != 1 ||
			resp.Statuses[0].Code != rls.RateLimitResponse_OK || resp.Statuses[0].CurrentLimit != nil {
			t.Fatalf("%v, %v; want OK with no limit", resp, err)
		}
		if keys, _ := env.Redis.Do("KEYS", "*k2*"); keys != "" {
			t.Errorf("Redis keys %q, want none", keys)
		}
	})
	t.Run("unknown domain: OK, not counted", func(t *testing.T) {
		resp, err := ask(c, 5*time.Second, "nosuchdomain", dayDescriptor("k3", 3, 1))
		if err != nil || resp.OverallCode != rls.RateLimitResponse_OK || len(resp.Statuses) != 1 ||
			resp.Statuses[0].Code != rls.RateLimitResponse_OK || resp.Statuses[0].CurrentLimit != nil {
			t.Fatalf("%v, %v; want OK with no limit", resp, err)
		}
		if keys, _ := env.Redis.Do("KEYS", "*k3*"); keys != "" {
			t.Errorf("Redis keys %q, want none", keys)
		}
	})
	t.Run("two descriptors: overall OVER_LIMIT when one is", func(t *testing.T) {
		resp, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("k4", 1, 2), dayDescriptor("k5", 5, 2))
		if err != nil || resp.OverallCode != rls.RateLimitResponse_OVER_LIMIT || len(resp.Statuses) != 2 ||
			resp.Statuses[0].Code != rls.RateLimitResponse_OVER_LIMIT || resp.Statuses[1].Code != rls.RateLimitResponse_OK ||
			resp.Statuses[1].LimitRemaining != 3 {
			t.Fatalf("%v, %v; want OVER_LIMIT, then OK with 3 remaining", resp, err)
		}
	})
}

// With Redis down, RLS answers gRPC UNKNOWN at once; with Redis hung, it does not answer at
// all (REDIS_TIMEOUT bounds the dial only): the caller's deadline is the only bound. After
// Redis comes back, each stale pooled connection fails one more call.
func TestFactsRedisDown(t *testing.T) {
	env := Start(t, Options{RedisTimeout: 200 * time.Millisecond})
	c := client(t, env)
	if _, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("d1", 10, 1)); err != nil {
		t.Fatal(err)
	}
	env.Redis.Stop()
	start := time.Now()
	_, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("d1", 10, 1))
	took := time.Since(start)
	if st, _ := status.FromError(err); st.Code() != codes.Unknown || !strings.Contains(st.Message(), "EOF") {
		t.Errorf("Redis stopped: %v, want code Unknown with an EOF message", err)
	}
	t.Logf("Redis stopped: %v after %v", err, took)
	if resp, err := http.Get("http://" + env.RLS.HTTPAddr + "/healthcheck"); err != nil || resp.StatusCode != 200 {
		t.Errorf("health check with Redis down: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}

	env.Redis.Start()
	var recovered int
	for recovered = 1; recovered <= 20; recovered++ {
		if _, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("d1", 10, 1)); err == nil {
			break
		}
	}
	if recovered > 20 {
		t.Fatalf("RLS still failing 20 calls after Redis came back")
	}
	t.Logf("Redis back: call %d succeeded", recovered)
	env.AwaitRedis(t) // the other stale pooled connections fail their call now, not below

	env.Redis.Pause()
	start = time.Now()
	_, err = ask(c, time.Second, DefaultDomain, dayDescriptor("d1", 10, 1))
	took = time.Since(start)
	env.Redis.Resume()
	if status.Code(err) != codes.DeadlineExceeded || took < time.Second {
		t.Errorf("Redis hung: %v after %v, want the caller's 1s deadline", err, took)
	}
}

// Restart keeps the addresses: a client dialled before reaches the new RLS, and a restarted
// Redis starts empty.
func TestRestart(t *testing.T) {
	env := Start(t, Options{})
	c := client(t, env)
	if _, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("r1", 10, 4)); err != nil {
		t.Fatal(err)
	}
	env.RLS.Restart()
	resp, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("r1", 10, 1))
	if err != nil || resp.Statuses[0].LimitRemaining != 5 {
		t.Fatalf("after RLS restart: %v, %v; want 5 remaining (the count kept in Redis)", resp, err)
	}
	env.Redis.Restart()
	for i := 0; i < 20; i++ { // stale pooled connections fail one call each
		if resp, err = ask(c, 5*time.Second, DefaultDomain, dayDescriptor("r1", 10, 1)); err == nil {
			break
		}
	}
	if err != nil || resp.Statuses[0].LimitRemaining != 9 {
		t.Fatalf("after Redis restart: %v, %v; want 9 remaining (Redis started empty)", resp, err)
	}
	if !env.RLS.Running() || !env.Redis.Running() {
		t.Error("Running() false after Restart")
	}
}

// With RedisPersist a stopped, or killed, Redis comes back with its counts, and AwaitRedis
// returns once RLS counts in it again: the next call continues the count.
func TestRedisPersist(t *testing.T) {
	env := Start(t, Options{RedisPersist: true})
	c := client(t, env)
	if _, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("p1", 10, 4)); err != nil {
		t.Fatal(err)
	}
	env.Redis.Stop()
	env.Redis.Start()
	env.AwaitRedis(t)
	resp, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("p1", 10, 1))
	if err != nil || resp.Statuses[0].LimitRemaining != 5 {
		t.Fatalf("after a Redis stop and start: %v, %v; want 5 remaining (4 + 1 counted)", resp, err)
	}
	env.Redis.Kill()
	env.Redis.Start()
	env.AwaitRedis(t)
	resp, err = ask(c, 5*time.Second, DefaultDomain, dayDescriptor("p1", 10, 1))
	if err != nil || resp.Statuses[0].LimitRemaining != 4 {
		t.Fatalf("after a Redis kill and start: %v, %v; want 4 remaining (appendfsync always)", resp, err)
	}
}

// Redis stopped under concurrent calls: each answers UNKNOWN at once or is held (no answer
// before the caller's deadline), and once Redis is back RLS may run some of the held ones
// (0 to 10, REDIS_POOL_SIZE, seen): counted, though every caller got an error; an UNKNOWN
// call is never counted. Held calls also keep RLS from stopping on SIGTERM (rlstest kills
// it after 5 s). How many are held and how many run depends on timing: the test pins the
// bounds only.
func TestFactsRedisStoppedHolds(t *testing.T) {
	env := Start(t, Options{RedisPersist: true, RedisTimeout: 200 * time.Millisecond})
	c := client(t, env)
	if _, err := ask(c, 5*time.Second, DefaultDomain, dayDescriptor("h1", 1000, 1)); err != nil {
		t.Fatal(err)
	}
	env.Redis.Stop()
	var wg sync.WaitGroup
	var unknown, held atomic.Int64
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				_, err := ask(c, 300*time.Millisecond, DefaultDomain, dayDescriptor("h1", 1000, 1))
				switch status.Code(err) {
				case codes.Unknown:
					unknown.Add(1)
				case codes.DeadlineExceeded:
					held.Add(1)
				default:
					t.Errorf("Redis stopped: %v, want UNKNOWN or the caller's deadline", err)
				}
			}
		}()
	}
	wg.Wait()
	start := time.Now()
	env.Redis.Start()
	env.AwaitRedis(t)
	_, day := untilMidnight(time.Now())
	v, err := env.Redis.Do("GET", "usageplans_plan_gold_key_h1_"+strconv.FormatInt(day, 10))
	n, _ := strconv.Atoi(v)
	t.Logf("Redis stopped, 48 calls: %d UNKNOWN, %d held to the deadline; Redis back (%v): count %d", unknown.Load(), held.Load(), time.Since(start).Round(time.Millisecond), n)
	if err != nil || n < 1 || int64(n) > 1+min(held.Load(), 10) {
		t.Errorf("%d held, count %d (%v); want 1 + at most min(held, 10): only held calls may run once Redis is back", held.Load(), n, err)
	}
}
