package dispatcher

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/dot-do/platform/services/db/store"
)

// TestApplyChangeCopiesOneShard applies a snapshot of 10,000 live workers
// and then one deploy: the new state shares every shard of live versions
// but the deployed worker's with the state before (a change costs
// O(N/liveShards), not O(N)), and every worker routes as before.
func TestApplyChangeCopiesOneShard(t *testing.T) {
	const n = 10000
	d, err := New(Config{Environment: "production", Namespace: "dotdo-production", InvokeToken: "t"}, nopSource{})
	if err != nil {
		t.Fatal(err)
	}
	live := make([]store.Deployment, n)
	for i := range live {
		live[i] = store.Deployment{ID: fmt.Sprint("d", i), Environment: "production", Service: fmt.Sprintf("w%d", i),
			Namespace: "dotdo-production", Version: 1, Status: store.StatusLive}
	}
	d.apply(store.WatchEvent{Snapshot: true, Live: live})
	before := d.state.Load()
	if before.workers.len() != n {
		t.Fatalf("%d workers after the snapshot, want %d", before.workers.len(), n)
	}
	dep := live[42]
	dep.Version, dep.ID = 2, "d42-2"
	d.apply(store.WatchEvent{Live: []store.Deployment{dep}})
	after := d.state.Load()
	copied := 0
	for i := range liveShards {
		if reflect.ValueOf(before.workers.shards[i]).UnsafePointer() != reflect.ValueOf(after.workers.shards[i]).UnsafePointer() {
			copied++
		}
	}
	if copied != 1 {
		t.Errorf("one deploy copied %d shards of %d, want 1", copied, liveShards)
	}
	if got, _ := before.workers.get("w42"); got.Version != 1 {
		t.Errorf("the published state changed: w42 at version %d", got.Version)
	}
	for i := range n {
		want := int64(1)
		if i == 42 {
			want = 2
		}
		if got, ok := after.workers.get(fmt.Sprintf("w%d", i)); !ok || got.Version != want {
			t.Fatalf("w%d: %+v %v, want version %d", i, got, ok, want)
		}
	}
	if after.workers.len() != n {
		t.Errorf("%d workers after the deploy, want %d", after.workers.len(), n)
	}
}

// nopSource pushes nothing: the test applies events itself.
type nopSource struct{}

func (nopSource) WatchEnvironment(ctx context.Context, _ string, _ func(store.WatchEvent) error) error {
	<-ctx.Done()
	return ctx.Err()
}
