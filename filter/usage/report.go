package usage

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/usageplans/usageplans/filter/config"
	"github.com/usageplans/usageplans/filter/state"
)

// MaxReportLines bounds the lines of one usage report: a configuration with more keys that
// made requests today gets a last line saying how many were left out (GetUsage has them all).
const MaxReportLines = 100

// Report writes one line per (plan, key) that made requests today, in configuration order,
// at most MaxReportLines of them, with today's used and remaining: per-key metering in the
// log without a metric per key. Lines name key ids, never values. An entry that cannot be
// read is left out and named in the error, after the others are reported.
func Report(cfg *config.Config, st Store, now time.Time, line func(string)) error {
	today := DayOf(now)
	prefix := "usageplans: usage on " + dateString(today) + " (UTC): plan="
	var v View
	var b []byte
	var first error
	n, more, failed := 0, 0, 0
	for _, p := range cfg.Plans {
		for _, k := range p.Keys() {
			if err := st.Read(cfg, p, k, &v); err != nil {
				// One unreadable entry costs its own line only: the rest are reported.
				if failed++; first == nil {
					first = errors.New("plan " + p.ID + " key " + k.ID + ": " + err.Error())
				}
				continue
			}
			used := v.Record.At(today).Used
			if used == 0 {
				continue
			}
			if n == MaxReportLines {
				more++
				continue
			}
			n++
			b = append(append(b[:0], prefix...), p.ID...)
			b = append(append(b, " key="...), k.ID...)
			b = strconv.AppendInt(append(b, " used="...), used, 10)
			b = strconv.AppendInt(append(b, " remaining="...), remaining(p.Quota, &v, today, now), 10)
			line(string(b))
		}
	}
	if more > 0 {
		line("usageplans: usage on " + dateString(today) + " (UTC): " + strconv.Itoa(more) +
			" more keys made requests (at most " + strconv.Itoa(MaxReportLines) + " lines a report): see GetUsage")
	}
	if failed > 1 {
		return errors.New(strconv.Itoa(failed) + " usage entries not read, the first: " + first.Error())
	}
	return first
}

// ClaimReport reports whether this caller is the one to write the report of interval (a
// number of report periods since the epoch): every worker's VM ticks, and the one whose CAS
// on <namespace>:usage-report moves it to interval first writes it, once.
func ClaimReport(s state.Store, namespace string, interval int64) (bool, error) {
	return ClaimInterval(s, namespace+":usage-report", interval)
}

// ClaimInterval reports whether this caller is the first to move the shared-data entry key
// to interval (a count of periods since the epoch), so that of every worker's VM ticking
// one does a periodic job once an interval.
func ClaimInterval(s state.Store, key string, interval int64) (bool, error) {
	v, cas, err := s.Get(key)
	switch {
	case errors.Is(err, state.ErrNotFound):
		cas = state.CreateCAS
	case err != nil:
		return false, err
	case len(v) == 9 && v[0] == Version && int64(binary.LittleEndian.Uint64(v[1:])) >= interval:
		return false, nil // done already
	}
	var b [9]byte
	b[0] = Version
	binary.LittleEndian.PutUint64(b[1:], uint64(interval))
	switch err := s.Set(key, b[:], cas); {
	case errors.Is(err, state.ErrCASMismatch):
		return false, nil // another worker claimed it
	case err != nil:
		return false, err
	}
	return true, nil
}
