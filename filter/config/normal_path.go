package config

// NormalPath is the normal form of a request target's path (query and fragment cut) that
// routes and resources are matched on, for tools that show what the filter matched (the
// gateway's access log). It is the filter's own normaliser, not a copy.
func NormalPath(target string) string { return cleanPath(stripQuery(target)) }
