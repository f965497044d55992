package config_test

import (
	"fmt"
	"os"

	"github.com/usageplans/usageplans/filter/config"
)

// The per-request path through the repository's plugin.json: bob (plan pro) deletes a pet.
func Example() {
	data, err := os.ReadFile("../../plugin.json")
	if err != nil {
		panic(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		fmt.Println(err) // every problem, one per line
		return
	}
	m := cfg.Match("petstore", "api.example.com", "/pets/42?force=true", "DELETE")
	fmt.Println("stage", m.Stage.ID, "method", m.Method.ID, "key required", m.Method.APIKeyRequired)

	key := cfg.KeyByValue("ProDemoKeyBob0000000000000000002")
	plan := key.Plan(m.Stage)
	fmt.Println("key", key.ID, "enabled", key.Enabled, "plan", plan.ID)

	var buf [4]config.Limit
	for _, l := range cfg.AppendLimits(buf[:0], plan, m) {
		fmt.Printf("%-12s %-45s perKey=%-5v %g/s burst %d\n", l.Level, l.ID, l.PerKey, l.Throttle.Rate, l.Throttle.Burst)
	}
	fmt.Println("quota", plan.Quota.Limit, "per month")
	// Output:
	// stage petstore/prod method /pets/{petId}/DELETE key required true
	// key bob enabled true plan pro
	// plan-method  plan:pro:petstore/prod:/pets/{petId}/DELETE   perKey=true  5/s burst 10
	// plan         plan:pro                                      perKey=true  50/s burst 100
	// stage-method stage:petstore/prod:/pets/{petId}/DELETE      perKey=false 500/s burst 1000
	// account      account                                       perKey=false 10000/s burst 5000
	// quota 1000000 per month
}
