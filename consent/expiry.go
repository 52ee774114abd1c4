// Expiry: grants leave the policy mirror (and their projection turns
// inactive) when their time is up.

package consent

import (
	"container/heap"
	"time"
)

// expEntry is a grant's expiry, when the follower re-checks it.
type expEntry struct {
	at int64
	k  gkey
}

type expHeap []expEntry

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap) Push(x any)        { *h = append(*h, x.(expEntry)) }
func (h *expHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expire takes grants whose expiry has passed out of the policy mirror
// (which already refuses them: it compares expiries with the clock) and
// updates their projection to inactive.
func (f *Follower) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now().Unix()
	for len(f.exp) > 0 && f.exp[0].at <= now {
		e := heap.Pop(&f.exp).(expEntry)
		if f.expAt[e.k] != e.at {
			continue // superseded by a later schedule
		}
		delete(f.expAt, e.k)
		f.reconcileLocked(e.k, now)
	}
}

// nextExpiry is how long until the next grant expires (capped).
func (f *Follower) nextExpiry() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.exp) == 0 {
		return time.Hour
	}
	d := time.Unix(f.exp[0].at, 0).Sub(f.now())
	return min(max(d, time.Millisecond), time.Hour)
}
