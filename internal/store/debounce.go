package store

import (
	"context"
	"time"
)

// Debouncer coalesces bursts of changes: after the first trigger it waits for
// holdoff of quiet, but never longer than max in total, then fires once.
// Istio's PILOT_DEBOUNCE_AFTER/MAX work the same way.
type Debouncer struct {
	holdoff, max time.Duration
	trigger      chan struct{}
}

// NewDebouncer returns a debouncer; call Run to start it.
func NewDebouncer(holdoff, max time.Duration) *Debouncer {
	if holdoff > max {
		holdoff = max // the cap always wins: a change never waits longer than max
	}
	return &Debouncer{holdoff: holdoff, max: max, trigger: make(chan struct{}, 1)}
}

// Trigger records a change. It never blocks.
func (d *Debouncer) Trigger() {
	select {
	case d.trigger <- struct{}{}:
	default:
	}
}

// Run calls fire after each debounced burst until ctx is done. fire runs on
// Run's goroutine, so fires never overlap; triggers during a fire start the
// next burst.
func (d *Debouncer) Run(ctx context.Context, fire func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.trigger:
		}
		deadline := time.NewTimer(d.max)
		quiet := time.NewTimer(d.holdoff)
	wait:
		for {
			select {
			case <-ctx.Done():
				deadline.Stop()
				quiet.Stop()
				return
			case <-d.trigger:
				quiet.Reset(d.holdoff)
			case <-quiet.C:
				break wait
			case <-deadline.C:
				break wait
			}
		}
		deadline.Stop()
		quiet.Stop()
		fire()
	}
}
