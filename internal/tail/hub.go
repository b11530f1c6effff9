package tail

import "sync"

// DefaultBuffer is how many events a subscriber may be behind before
// events to it are dropped (and counted).
const DefaultBuffer = 256

// Hub fans the events of each topic (a worker: namespace/script) out to
// its subscribers. Publish never blocks: a subscriber that is behind by
// its whole buffer loses the event, and the loss is counted for it. The
// zero Hub is ready to use.
type Hub struct {
	mu     sync.Mutex
	topics map[string]map[*Subscription]struct{}
	// OnChange, when set, is called (outside the lock) with a topic and
	// its number of subscribers whenever that number goes from or to 0.
	OnChange func(topic string, subscribers int)
}

// Subscription receives the events of one topic.
type Subscription struct {
	hub   *Hub
	topic string
	ch    chan *Event
	mu    sync.Mutex
	lost  int64
	done  chan struct{}
	once  sync.Once
}

// Subscribe returns a subscription to topic with a buffer of n events
// (DefaultBuffer when n <= 0). Close it when done.
func (h *Hub) Subscribe(topic string, n int) *Subscription {
	if n <= 0 {
		n = DefaultBuffer
	}
	s := &Subscription{hub: h, topic: topic, ch: make(chan *Event, n), done: make(chan struct{})}
	h.mu.Lock()
	if h.topics == nil {
		h.topics = map[string]map[*Subscription]struct{}{}
	}
	subs := h.topics[topic]
	if subs == nil {
		subs = map[*Subscription]struct{}{}
		h.topics[topic] = subs
	}
	subs[s] = struct{}{}
	first := len(subs) == 1
	h.mu.Unlock()
	if first && h.OnChange != nil {
		h.OnChange(topic, 1)
	}
	return s
}

// Subscribers returns how many subscriptions topic has.
func (h *Hub) Subscribers(topic string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics[topic])
}

// Publish hands e to every subscriber of topic that has room, and counts
// it as lost for the others. Subscribers must not change e.
func (h *Hub) Publish(topic string, e *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.topics[topic] {
		select {
		case s.ch <- e:
		default:
			s.mu.Lock()
			s.lost++
			s.mu.Unlock()
		}
	}
}

// Events delivers the subscription's events. It is never closed: stop
// reading when Done is.
func (s *Subscription) Events() <-chan *Event { return s.ch }

// Done is closed by Close.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Lost returns how many events were dropped since the last call, and
// resets the count.
func (s *Subscription) Lost() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.lost
	s.lost = 0
	return n
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		subs := h.topics[s.topic]
		delete(subs, s)
		last := len(subs) == 0
		if last {
			delete(h.topics, s.topic)
		}
		h.mu.Unlock()
		close(s.done)
		if last && h.OnChange != nil {
			h.OnChange(s.topic, 0)
		}
	})
}
