package config

import "strings"

// Error is one problem in a configuration: where (a JSON path such as
// `usagePlans[1].quota.period`) and what was expected.
type Error struct {
	Path    string
	Message string
}

func (e Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is every problem Parse found, in the order checked (top-level fields, apis,
// routes, usagePlans, apiKeys, usagePlanKeys, then the options); Error prints one per line.
type Errors []Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}
