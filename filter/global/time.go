package global

import "time"

const thursday = time.Thursday

func unixTime(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
