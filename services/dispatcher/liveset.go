package dispatcher

import (
	"hash/maphash"
	"maps"
)

// liveShards is the number of shards of a liveSet.
const liveShards = 256

// liveSeed hashes worker names to their shard.
var liveSeed = maphash.MakeSeed()

// liveSet maps workers to their live versions. It is persistent: a
// changed set (see liveEdit) shares every shard it did not change with the
// set it came from, so that applying one pushed deploy copies one shard,
// O(N/liveShards), instead of the whole map, and a published set never
// changes under the requests that read it.
type liveSet struct {
	shards [liveShards]map[string]LiveVersion
	n      int
}

func shardOf(worker string) int { return int(maphash.String(liveSeed, worker) % liveShards) }

// get returns worker's live version.
func (s *liveSet) get(worker string) (LiveVersion, bool) {
	lv, ok := s.shards[shardOf(worker)][worker]
	return lv, ok
}

// len returns the number of workers in s.
func (s *liveSet) len() int { return s.n }

// all returns a new map of every worker's live version.
func (s *liveSet) all() map[string]LiveVersion {
	out := make(map[string]LiveVersion, s.n)
	for _, sh := range s.shards {
		maps.Copy(out, sh)
	}
	return out
}

// liveEdit builds a liveSet from another one, copying each shard before
// its first change.
type liveEdit struct {
	set   liveSet
	owned [liveShards]bool
}

// put sets worker's live version.
func (e *liveEdit) put(worker string, lv LiveVersion) {
	i := shardOf(worker)
	if !e.owned[i] {
		sh := make(map[string]LiveVersion, len(e.set.shards[i])+1)
		maps.Copy(sh, e.set.shards[i])
		e.set.shards[i], e.owned[i] = sh, true
	}
	if _, ok := e.set.shards[i][worker]; !ok {
		e.set.n++
	}
	e.set.shards[i][worker] = lv
}
