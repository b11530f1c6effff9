// Package cron parses standard 5-field cron expressions (minute, hour, day
// of month, month, day of week) and tells whether a minute matches one.
// Times are taken in UTC, as Cloudflare's cron triggers are.
//
// Each field is "*", a number, a range "a-b", any of those with a step
// "/n", or a comma-separated list of them. Months may be written JAN-DEC
// and days of the week SUN-SAT (0 and 7 are both Sunday). When both the day
// of month and the day of week are restricted, a day matching either one
// matches, as in Vixie cron.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron expression.
type Schedule struct {
	expr                     string
	minute, hour, dom, month uint64
	dow                      uint64
	domStar, dowStar         bool
}

type field struct {
	name     string
	min, max int
	names    []string // names[i] is the value min+i
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day of week", min: 0, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

// Parse parses a 5-field cron expression. Its error says which field is
// wrong and why.
func Parse(expr string) (Schedule, error) {
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return Schedule{}, fmt.Errorf("%q has %d fields, want 5 (minute hour day-of-month month day-of-week)", expr, len(parts))
	}
	var bits [5]uint64
	for i, p := range parts {
		b, err := fields[i].parse(p)
		if err != nil {
			return Schedule{}, fmt.Errorf("%q: %s field %q: %v", expr, fields[i].name, p, err)
		}
		bits[i] = b
	}
	if bits[4]&(1<<7) != 0 {
		bits[4] |= 1 // 7 is Sunday too
	}
	return Schedule{
		expr: strings.Join(parts, " "), minute: bits[0], hour: bits[1], dom: bits[2], month: bits[3], dow: bits[4],
		domStar: parts[2] == "*" || parts[2] == "?", dowStar: parts[4] == "*" || parts[4] == "?",
	}, nil
}

// String returns the expression with its fields separated by one space.
func (s Schedule) String() string { return s.expr }

// Matches reports whether the minute of t (in UTC) is one the schedule
// fires at.
func (s Schedule) Matches(t time.Time) bool {
	t = t.UTC()
	if s.minute&(1<<uint(t.Minute())) == 0 || s.hour&(1<<uint(t.Hour())) == 0 || s.month&(1<<uint(t.Month())) == 0 {
		return false
	}
	domOK := s.dom&(1<<uint(t.Day())) != 0
	dowOK := s.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case s.domStar && s.dowStar:
		return true
	case s.domStar:
		return dowOK
	case s.dowStar:
		return domOK
	default:
		return domOK || dowOK
	}
}

func (f field) parse(s string) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(s, ",") {
		b, err := f.parseItem(item)
		if err != nil {
			return 0, err
		}
		bits |= b
	}
	return bits, nil
}

func (f field) parseItem(item string) (uint64, error) {
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepText)
		if err != nil || n < 1 || n > f.max {
			return 0, fmt.Errorf("step %q is not a number from 1 to %d", stepText, f.max)
		}
		step = n
	}
	lo, hi := f.min, f.max
	switch {
	case rng == "*" || (rng == "?" && (f.name == "day of month" || f.name == "day of week")):
		if f.name == "day of week" {
			hi = 6
		}
	case rng == "":
		return 0, fmt.Errorf("empty item")
	default:
		a, b, isRange := strings.Cut(rng, "-")
		var err error
		if lo, err = f.value(a); err != nil {
			return 0, err
		}
		hi = lo
		if isRange {
			if hi, err = f.value(b); err != nil {
				return 0, err
			}
			if hi < lo {
				return 0, fmt.Errorf("range %s-%s ends before it starts", a, b)
			}
		} else if hasStep {
			hi = f.max
		}
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits, nil
}

func (f field) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < f.min || n > f.max {
		if f.names != nil {
			return 0, fmt.Errorf("%q is not a number from %d to %d or a name (%s-%s)", s, f.min, f.max, f.names[0], f.names[len(f.names)-1])
		}
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, f.min, f.max)
	}
	return n, nil
}
