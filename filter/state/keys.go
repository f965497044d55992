package state

// The store's keys. Every key starts with the namespace, and there is one per configured
// (plan, API key) pair and one per shared limit (config Limit.ID: stage methods and the
// account), so the key space is bounded by the configuration, never by time or traffic;
// the ABI has no delete. Ids are the configuration's ids, never API key values.

// KeyEntry is the store key of everything one API key uses in one plan: its per-key
// buckets (plan throttle and per-method overrides) and its quota counter.
func KeyEntry(namespace, planID, keyID string) string {
	return namespace + ":key:" + planID + ":" + keyID
}

// SharedEntry is the store key of a bucket shared by every key (stage-method and account
// limits), by the config's Limit.ID.
func SharedEntry(namespace, limitID string) string {
	return namespace + ":" + limitID
}
