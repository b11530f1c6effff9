package workerd

import (
	"context"
	"sync"
)

type pool struct {
	name      string
	maxLoaded int

	mu        sync.Mutex
	cur       *proc
	starting  chan struct{}
	startErr  error
	recycling bool
	closed    bool
}

// getPool returns the pool for name, creating it.
func (s *Supervisor) getPool(name string) (*pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if p, ok := s.pools[name]; ok {
		return p, nil
	}
	max := s.opt.MaxLoadedVersions
	if name == CheckPool {
		max = min(max, checkPoolMaxLoaded)
	} else if s.opt.PoolAllowed != nil && !s.opt.PoolAllowed(name) {
		return nil, ErrNotFound
	}
	p := &pool{name: name, maxLoaded: max}
	s.pools[name] = p
	return p, nil
}

// StopPool kills the processes of a pool (for a deleted namespace) and
// forgets the pool. In-flight requests on it fail.
func (s *Supervisor) StopPool(name string) {
	s.mu.Lock()
	p, ok := s.pools[name]
	delete(s.pools, name)
	var victims []*proc
	for _, pr := range s.procs {
		if pr.pool == p {
			victims = append(victims, pr)
		}
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	p.mu.Lock()
	p.closed = true
	p.cur = nil
	p.mu.Unlock()
	for _, pr := range victims {
		s.kill(pr, "namespace deleted")
	}
}

// acquire returns the pool's current process with one more in-flight
// request counted, starting the process if there is none. The caller must
// call release.
func (s *Supervisor) acquire(ctx context.Context, name string) (*proc, error) {
	p, err := s.getPool(name)
	if err != nil {
		return nil, err
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if c := p.cur; c != nil && c.alive() {
			c.inflight.Add(1)
			p.mu.Unlock()
			return c, nil
		}
		if ch := p.starting; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			p.mu.Lock()
			err := p.startErr
			p.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		ch := make(chan struct{})
		p.starting = ch
		p.mu.Unlock()

		np, err := s.start(p)
		p.mu.Lock()
		p.starting = nil
		p.startErr = err
		if err == nil {
			if p.closed {
				err = ErrClosed
			} else {
				p.cur = np
			}
		}
		close(ch)
		p.mu.Unlock()
		if err != nil {
			if np != nil {
				s.kill(np, "pool closed during start")
			}
			return nil, err
		}
	}
}

func (s *Supervisor) release(p *proc) {
	p.inflight.Add(-1)
}
