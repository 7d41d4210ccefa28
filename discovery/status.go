package discovery

import (
	"sync"
	"time"
)

// Tracker keeps a watcher's Status; watchers embed one and report each
// exchange with the registry. Safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	st Status
	// now is the clock (tests replace it).
	now func() time.Time
}

// Synced records a successful exchange; complete says it was a whole
// listing (the watcher is then ready).
func (t *Tracker) Synced(complete bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Healthy = true
	t.st.LastError = ""
	t.st.LastSync = t.clock()
	if complete {
		t.st.Ready = true
	}
}

// Failed records a failed exchange: the registry is unhealthy until the
// next success. Readiness, once reached, stays (the last listing is kept).
func (t *Tracker) Failed(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Healthy = false
	t.st.Errors++
	if err != nil {
		t.st.LastError = err.Error()
	}
}

// Status returns the current status.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

func (t *Tracker) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}
