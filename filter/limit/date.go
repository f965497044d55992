package limit

// Civil dates by integer arithmetic, for the usage API's YYYY-MM-DD: time's Date and Day
// accessors would link the local time zone's loading into the module.

// DateOf is the year, month (1 to 12) and day of month of the UTC day that is days after
// 1970-01-01.
func DateOf(days int64) (year int64, month, day int) {
	year, month = civil(days)
	return year, month, int(days-daysFromCivil(year, month)) + 1
}

// DaysOf is the UTC day of a date, in days since 1970-01-01, and whether the date exists
// (a month from 1 to 12, a day within its month).
func DaysOf(year int64, month, day int) (int64, bool) {
	if month < 1 || month > 12 || day < 1 {
		return 0, false
	}
	first := daysFromCivil(year, month)
	ny, nm := year, month+1
	if nm == 13 {
		ny, nm = year+1, 1
	}
	if int64(day) > daysFromCivil(ny, nm)-first {
		return 0, false
	}
	return first + int64(day) - 1, true
}
