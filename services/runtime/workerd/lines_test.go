package workerd

import (
	"strings"
	"testing"
)

// TestEachLine: long lines are cut and the lines after them still arrive;
// line endings are dropped; a last line without one is kept.
func TestEachLine(t *testing.T) {
	long := strings.Repeat("x", 2<<20) // past any read buffer
	in := "short\r\n" + long + "\nafter the long one\n\n" + strings.Repeat("y", 10) + "\nno newline at the end"
	var got []string
	eachLine(strings.NewReader(in), 8, func(line string) { got = append(got, line) })
	want := []string{"short", "xxxxxxxx…", "after th…", "", "yyyyyyyy…", "no newli…"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got = nil
	eachLine(strings.NewReader("exactly8\nnine char\n"), 8, func(line string) { got = append(got, line) })
	if strings.Join(got, "|") != "exactly8|nine cha…" {
		t.Fatalf("at the bound: %q", got)
	}
}
