package cron

import (
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"* * * *", "has 4 fields"},
		{"60 * * * *", `minute field "60"`},
		{"* 24 * * *", `hour field "24"`},
		{"* * 0 * *", `day of month field "0"`},
		{"* * * 13 *", `month field "13"`},
		{"* * * * 8", `day of week field "8"`},
		{"*/0 * * * *", "step"},
		{"5-1 * * * *", "ends before it starts"},
		{"a * * * *", `"a" is not a number`},
		{"1,,2 * * * *", "empty item"},
		{"@daily", "has 1 fields"},
	} {
		_, err := Parse(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.expr, err, tc.want)
		}
	}
}

func TestMatches(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		expr string
		time string
		want bool
	}{
		{"* * * * *", "2026-01-01T00:00:00Z", true},
		{"*/5 * * * *", "2026-01-01T10:15:30Z", true},
		{"*/5 * * * *", "2026-01-01T10:16:00Z", false},
		{"0 12 * * *", "2026-01-01T12:00:00Z", true},
		{"0 12 * * *", "2026-01-01T13:00:00+01:00", true}, // UTC
		{"0 0 1 JAN *", "2026-01-01T00:00:00Z", true},
		{"0 0 * * MON-FRI", "2026-01-03T00:00:00Z", false}, // a Saturday
		{"0 0 * * 7", "2026-01-04T00:00:00Z", true},        // Sunday as 7
		{"0 0 * * 0", "2026-01-04T00:00:00Z", true},
		{"0 0 15 * MON", "2026-01-05T00:00:00Z", true}, // Monday, not the 15th: either matches
		{"0 0 15 * MON", "2026-01-06T00:00:00Z", false},
		{"10-20/5 * * * *", "2026-01-01T00:15:00Z", true},
		{"10-20/5 * * * *", "2026-01-01T00:25:00Z", false},
		{"5/15 * * * *", "2026-01-01T00:50:00Z", true},
		{"1,2,3 * * * *", "2026-01-01T00:02:00Z", true},
	} {
		s, err := Parse(tc.expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.expr, err)
		}
		if got := s.Matches(at(tc.time)); got != tc.want {
			t.Errorf("%q matches %s = %v, want %v", tc.expr, tc.time, got, tc.want)
		}
	}
}
