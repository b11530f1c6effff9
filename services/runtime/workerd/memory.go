package workerd

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"
)

// memoryReadEvery is how long a reading of /proc/meminfo serves the starts
// that follow it: a burst of starts reads the file once.
const memoryReadEvery = 250 * time.Millisecond

// evictedExitWait bounds how long a start waits for an idle process it
// stopped to make room in memory to exit.
const evictedExitWait = 2 * time.Second

// admitMemory lets a process start when the machine has MinFreeMemory
// available. Below it, it stops idle processes, least recently used first
// (each one waited for, so that its memory is free), until there is
// enough; when no idle process is left it fails with ErrLowMemory.
func (s *Supervisor) admitMemory() error {
	if s.opt.MinFreeMemory < 0 {
		return nil
	}
	fresh := false
	for {
		avail, err := s.mem.available(fresh)
		fresh = true // after a stop, read again
		if err != nil || avail >= s.opt.MinFreeMemory {
			return nil // unknown is no reason to refuse
		}
		s.mu.Lock()
		_, lru := s.serving()
		s.mu.Unlock()
		if lru == nil {
			s.log.Warn("workerd: process start refused: the machine is low on memory",
				"available_bytes", avail, "min_free_bytes", s.opt.MinFreeMemory)
			return ErrLowMemory
		}
		if !s.retireIfIdle(lru) {
			continue // it took a request meanwhile: look again
		}
		s.log.Info("workerd: idle process stopped to free memory", "worker", lru.key.String(), "pid", lru.pid,
			"available_bytes", avail, "min_free_bytes", s.opt.MinFreeMemory)
		select {
		case <-lru.done:
		case <-time.After(evictedExitWait):
		case <-s.stop:
			return ErrClosed
		}
	}
}

// memoryReader caches the machine's available memory for every.
type memoryReader struct {
	read  func() (int64, error)
	every time.Duration
	mu    sync.Mutex
	at    time.Time
	val   int64
	err   error
}

// available returns the cached reading, or a new one when it is older than
// m.every or fresh is set.
func (m *memoryReader) available(fresh bool) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now := time.Now(); fresh || now.Sub(m.at) >= m.every {
		m.val, m.err = m.read()
		m.at = now
	}
	return m.val, m.err
}

// memAvailable returns MemAvailable of /proc/meminfo, in bytes: the
// kernel's estimate of the memory that can be had without swapping.
func memAvailable() (int64, error) { return procKB("/proc/meminfo", "MemAvailable:") }

// procKB returns, in bytes, the value of the line of a /proc file that
// starts with field and counts kB ("RssAnon:   1024 kB").
func procKB(path, field string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field)); ok {
			if f := bytes.Fields(v); len(f) >= 1 {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no " + field + " in " + path)
}
