package workerd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// recycle replaces old, if it is still its pool's current process, with a
// new process (blue/green): the new one becomes current once it listens and
// the old one drains, then is killed.
func (s *Supervisor) recycle(old *proc, reason string) {
	p := old.pool
	p.mu.Lock()
	if p.closed || p.cur != old || p.recycling {
		p.mu.Unlock()
		return
	}
	p.recycling = true
	p.mu.Unlock()
	s.log.Info("workerd: replacing process", "pool", p.name, "pid", old.pid, "reason", reason,
		"loaded_versions", old.loaded.Load(), "rss_bytes", old.rss())

	np, err := s.start(p)
	p.mu.Lock()
	p.recycling = false
	if err != nil {
		p.mu.Unlock()
		if !errors.Is(err, ErrClosed) {
			s.log.Error("workerd: replacement failed to start; keeping the old process", "pool", p.name, "err", err)
		}
		return
	}
	if p.closed {
		p.mu.Unlock()
		s.kill(np, "pool closed")
		return
	}
	prev := p.cur
	p.cur = np
	if prev != nil {
		prev.retired.Store(true)
	}
	p.mu.Unlock()
	if prev != nil {
		s.goBG(func() {
			s.drain(prev)
		})
	}
}

// drain waits until the retired process has no request in flight (or
// DrainTimeout passes, or it dies) and kills it.
func (s *Supervisor) drain(p *proc) {
	deadline := time.NewTimer(s.opt.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for p.inflight.Load() > 0 {
		select {
		case <-p.done:
			return
		case <-s.stop:
			return
		case <-deadline.C:
			s.log.Warn("workerd: drain timed out; killing process with requests in flight", "pool", p.pool.name, "pid", p.pid, "in_flight", p.inflight.Load())
			s.kill(p, "drain timeout")
			return
		case <-tick.C:
		}
	}
	s.kill(p, "replaced")
}

func (s *Supervisor) healthLoop() {
	t := time.NewTicker(s.opt.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		procs := make([]*proc, 0, len(s.procs))
		for _, p := range s.procs {
			procs = append(procs, p)
		}
		s.mu.Unlock()
		for _, p := range procs {
			if !p.alive() || !p.checking.CompareAndSwap(false, true) {
				continue
			}
			s.goBG(func() {
				defer p.checking.Store(false)
				s.checkHealth(p)
			})
		}
	}
}

func (s *Supervisor) checkHealth(p *proc) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.HealthTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/", nil)
	req.Header.Set("x-dotdo-key", s.key)
	req.Header.Set("x-dotdo-op", "health")
	res, err := p.client.Do(req)
	if err == nil {
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", res.StatusCode)
		}
	}
	if err != nil {
		if !p.alive() {
			return
		}
		s.log.Error("workerd: process unresponsive; killing it", "pool", p.pool.name, "pid", p.pid,
			"timeout", s.opt.HealthTimeout, "err", err)
		s.kill(p, "health check failed")
		return
	}
	if rss := p.rss(); rss > s.opt.MaxRSSBytes && !p.retired.Load() {
		s.goBG(func() {
			s.recycle(p, fmt.Sprintf("rss %d bytes above bound %d", rss, s.opt.MaxRSSBytes))
		})
	}
}

// Recycle replaces the current process of a pool blue/green, as the bounds
// do. It returns when the replacement serves (or failed to start).
func (s *Supervisor) Recycle(name string) {
	s.mu.Lock()
	p := s.pools[name]
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	cur := p.cur
	p.mu.Unlock()
	if cur != nil {
		s.recycle(cur, "requested")
	}
}
