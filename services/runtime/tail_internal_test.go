package runtime

import (
	"testing"

	"github.com/dot-do/platform/services/runtime/workerd"
)

// TestTailForgetsCrons checks that the crons remembered for the versions
// of a tailed script go when its last tail ends, and only its own.
func TestTailForgetsCrons(t *testing.T) {
	var tl tails
	tl.init()
	for v := range int64(1000) {
		tl.crons.Store(workerd.Key{Namespace: "ns", Script: "a", Version: v, Tail: true}, "* * * * *")
	}
	other := workerd.Key{Namespace: "ns", Script: "b", Version: 1, Tail: true}
	tl.crons.Store(other, "0 * * * *")
	tl.hub.OnChange(topic("ns", "a"), 1)
	tl.hub.OnChange(topic("ns", "a"), 0)
	n := 0
	tl.crons.Range(func(k, _ any) bool { n++; return true })
	if _, ok := tl.crons.Load(other); n != 1 || !ok {
		t.Fatalf("%d crons remembered after the tail of ns/a ended (want only ns/b's)", n)
	}
}
