package core

import (
	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/limit"
)

// localQuota is the plan's quota as this proxy counts it: none in global mode, where the
// Rate Limit Service counts it for the whole fleet (filter/global) once Decide has admitted
// the request by its local limits.
func localQuota(cfg *config.Config, plan *config.Plan) *limit.Quota {
	if plan == nil || cfg.Global != nil {
		return nil
	}
	return plan.Quota
}
