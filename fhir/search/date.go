package search

import (
	"math"
	"time"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
	"github.com/fhirgate/fhirgate/store"
)

// Open ends of a Period.
const (
	MinTime int64 = math.MinInt64
	MaxTime int64 = math.MaxInt64
)

// date indexes a date, dateTime, instant, Period or Timing as the
// inclusive range of instants it covers.
func (e *emitter) date(it fhirpath.Item) {
	v := it.V
	var lo, hi int64
	var ok bool
	switch {
	case v.Kind == fhirjson.String:
		lo, hi, ok = DateRange(v.Str)
	case v.Kind != fhirjson.Object:
	case it.Type == "Timing" || it.Type == "" && (v.Get("event") != nil || v.Get("repeat") != nil):
		lo, hi, ok = timingRange(v)
	case it.Type == "Period" || it.Type == "" && (v.Get("start") != nil || v.Get("end") != nil):
		lo, hi, ok = periodRange(v)
	}
	if ok {
		e.add(store.IndexValue{Kind: store.IndexDate, Lo: lo, Hi: hi})
	}
}

// periodRange is [start, end] at the precision of each; a missing side
// is open (MinTime, MaxTime).
func periodRange(v *fhirjson.Value) (lo, hi int64, ok bool) {
	start, end := v.GetString("start"), v.GetString("end")
	if start == "" && end == "" {
		return 0, 0, false
	}
	lo, hi = MinTime, MaxTime
	var sHi, eLo int64
	if start != "" {
		if lo, sHi, ok = DateRange(start); !ok {
			return 0, 0, false
		}
	}
	if end != "" {
		if eLo, hi, ok = DateRange(end); !ok {
			return 0, 0, false
		}
	}
	if start != "" && end != "" && lo > hi {
		// An end before the start: cover both rather than invert.
		lo, hi = min(lo, eLo), max(hi, sHi)
	}
	return lo, hi, true
}

// timingRange covers a Timing's outer limits (R4: "the specified
// scheduling details are ignored and only the outer limits matter"): its
// event times and repeat.boundsPeriod. Duration and Range bounds give no
// dates and are ignored.
func timingRange(v *fhirjson.Value) (lo, hi int64, ok bool) {
	lo, hi = MaxTime, MinTime
	widen := func(l, h int64) {
		lo, hi, ok = min(lo, l), max(hi, h), true
	}
	if ev := v.Get("event"); ev != nil {
		for i := range ev.Items {
			if s := &ev.Items[i]; s.Kind == fhirjson.String {
				if l, h, good := DateRange(s.Str); good {
					widen(l, h)
				}
			}
		}
	}
	if b := v.Get("repeat").Get("boundsPeriod"); b != nil {
		if l, h, good := periodRange(b); good {
			widen(l, h)
		}
	}
	return lo, hi, ok
}

// DateRange parses a FHIR date ("2020", "2020-03", "2020-03-15"),
// dateTime or instant ("2020-03-15T10:20:30.123+01:00") and returns the
// inclusive range of Unix microseconds its precision covers:
// "2020-03" is [2020-03-01T00:00:00Z, 2020-03-31T23:59:59.999999Z].
//
// A value without a time zone (every date, and a dateTime that omits it,
// which FHIR forbids once a time is given) is taken as UTC: the server
// cannot know the writer's zone, and UTC at least keeps the index stable.
// Fractional seconds finer than microseconds are truncated; a leap second
// (:60) counts as :59.
func DateRange(s string) (lo, hi int64, ok bool) {
	year, ok := num(s, 0, 4)
	if !ok || year == 0 {
		return 0, 0, false
	}
	month, day, sec := 1, 1, 0
	var frac int64
	var fracDigits int
	var offset int // seconds east of UTC
	var step func(t time.Time) time.Time
	i := 4
	switch {
	case i == len(s):
		step = func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	case s[i] != '-':
		return 0, 0, false
	default:
		if month, ok = num(s, i+1, 2); !ok || month < 1 || month > 12 {
			return 0, 0, false
		}
		i += 3
		if i == len(s) {
			step = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
			break
		}
		if s[i] != '-' {
			return 0, 0, false
		}
		if day, ok = num(s, i+1, 2); !ok || day < 1 || day > daysIn(year, month) {
			return 0, 0, false
		}
		i += 3
		if i == len(s) {
			step = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
			break
		}
		if s[i] != 'T' || i+6 > len(s) || s[i+3] != ':' {
			return 0, 0, false
		}
		hour, ok1 := num(s, i+1, 2)
		minute, ok2 := num(s, i+4, 2)
		if !ok1 || !ok2 || hour > 23 || minute > 59 {
			return 0, 0, false
		}
		i += 6
		unit := int64(60e6)
		if i < len(s) && s[i] == ':' {
			if sec, ok = num(s, i+1, 2); !ok || sec > 60 {
				return 0, 0, false
			}
			sec = min(sec, 59)
			i += 3
			unit = 1e6
			if i < len(s) && s[i] == '.' {
				i++
				for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
					if fracDigits < 6 {
						frac = frac*10 + int64(s[i]-'0')
						fracDigits++
					}
				}
				if fracDigits == 0 {
					return 0, 0, false
				}
				unit = 1
				for k := fracDigits; k < 6; k++ {
					frac *= 10
					unit *= 10
				}
			}
		}
		if offset, ok = zone(s[i:]); !ok {
			return 0, 0, false
		}
		lo = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix()*1e6 + frac - int64(offset)*1e6
		return lo, lo + unit - 1, true
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	return t.UnixMicro(), step(t).UnixMicro() - 1, true
}

// zone parses "", "Z" or "+hh:mm"/"-hh:mm" into seconds east of UTC.
func zone(s string) (int, bool) {
	switch {
	case s == "" || s == "Z":
		return 0, true
	case len(s) != 6 || s[0] != '+' && s[0] != '-' || s[3] != ':':
		return 0, false
	}
	h, ok1 := num(s, 1, 2)
	m, ok2 := num(s, 4, 2)
	if !ok1 || !ok2 || h > 14 || m > 59 {
		return 0, false
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return off, true
}

// num parses the n decimal digits of s at i.
func num(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
