package file

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Watcher timing defaults.
const (
	// DefaultQuiet is how long the directory must be quiet after a file-system
	// event before it is reloaded, so an editor's write+rename is one change.
	DefaultQuiet = 20 * time.Millisecond
	// DefaultMaxDelay caps the wait under a continuous stream of events.
	DefaultMaxDelay = 500 * time.Millisecond
	// DefaultPollInterval is how often the directory is re-read while it
	// cannot be watched (root removed, inotify limits reached).
	DefaultPollInterval = 2 * time.Second
)

// Watcher loads a directory and reloads it when anything under it changes.
// Parsed documents are cached per file by content hash, so a change to one
// file re-parses only that file.
type Watcher struct {
	root string
	log  *zap.Logger

	quiet, maxDelay, pollInterval time.Duration

	loader   loader
	fsw      *fsnotify.Watcher
	watched  map[string]bool // absolute directory paths with a watch
	degraded bool            // some directory could not be watched: poll

	failing   bool // the last reload could not read the directory
	delivered bool
	lastFP    [sha256.Size]byte
}

// NewWatcher returns a Watcher for root, which must be a readable directory.
// A nil logger logs nothing.
func NewWatcher(root string, log *zap.Logger) (*Watcher, error) {
	if log == nil {
		log = zap.NewNop()
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("config dir %s is not a directory", root)
	}
	return &Watcher{
		root:         abs,
		log:          log.With(zap.String("dir", abs)),
		quiet:        DefaultQuiet,
		maxDelay:     DefaultMaxDelay,
		pollInterval: DefaultPollInterval,
		loader:       loader{cache: map[string]*parsedFile{}, lastGood: map[string]*parsedFile{}},
		watched:      map[string]bool{},
	}, nil
}

// Run calls onChange with the initial load, then again after every change
// under the directory, until ctx is done (it then returns nil). onChange runs
// on Run's goroutine and should return promptly. A reload whose inputs are
// byte-for-byte the same as the last delivered one (an editor's swap file
// came and went) is not delivered. When the directory itself is removed or
// unreadable, the last Result stays in force and Run keeps trying to reload
// it every poll interval. Run must not be called more than once.
func (w *Watcher) Run(ctx context.Context, onChange func(*Result)) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		// No inotify instance left: still serve the directory, by polling.
		w.log.Warn("cannot watch config dir; polling it instead", zap.Error(err), zap.Duration("interval", w.pollInterval))
		w.degraded = true
	} else {
		w.fsw = fsw
		defer fsw.Close()
	}
	res, err := w.reload()
	if err != nil {
		return fmt.Errorf("loading config dir: %w", err)
	}
	w.deliver(res, onChange)

	var (
		events   <-chan fsnotify.Event
		errs     <-chan error
		timer    = time.NewTimer(time.Hour)
		timerC   <-chan time.Time // nil unless a reload is pending
		first    time.Time        // first event of the pending burst
		poll     *time.Ticker
		pollC    <-chan time.Time
		schedule = func() {
			now := time.Now()
			if timerC == nil {
				first = now
			}
			d := w.quiet
			if rest := w.maxDelay - now.Sub(first); rest < d {
				d = max(rest, 0)
			}
			timer.Reset(d)
			timerC = timer.C
		}
	)
	timer.Stop()
	defer timer.Stop()
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
	}
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		// Poll while the directory cannot be (fully) watched.
		if w.degraded && poll == nil {
			poll = time.NewTicker(w.pollInterval)
			pollC = poll.C
		} else if !w.degraded && poll != nil {
			poll.Stop()
			poll, pollC = nil, nil
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				w.degraded = true
				continue
			}
			if ev.Name == w.root && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				w.log.Warn("config dir removed; keeping the last configuration until it is back")
				w.dropWatches()
			}
			schedule()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events: reload everything to be sure.
			w.log.Warn("config dir watch error", zap.Error(err), zap.Bool("overflow", errors.Is(err, fsnotify.ErrEventOverflow)))
			schedule()
		case <-timerC:
			timerC = nil
			w.reloadAndDeliver(onChange)
		case <-pollC:
			w.reloadAndDeliver(onChange)
		}
	}
}

func (w *Watcher) reloadAndDeliver(onChange func(*Result)) {
	res, err := w.reload()
	if err != nil {
		if !w.failing {
			w.log.Error("cannot read config dir; keeping the last configuration", zap.Error(err))
		} else {
			w.log.Debug("config dir still unreadable", zap.Error(err))
		}
		w.failing = true
		return
	}
	if w.failing {
		w.log.Info("config dir readable again")
		w.failing = false
	}
	w.deliver(res, onChange)
}

// deliver hands a new Result to onChange unless its inputs equal the last one's.
func (w *Watcher) deliver(r *reloaded, onChange func(*Result)) {
	fields := []zap.Field{
		zap.Int("objects", len(r.result.Objects)),
		zap.Int("problems", len(r.result.Problems.List())),
		zap.Int("rejected", r.result.Problems.Rejected()),
		zap.Int("files", r.stats.files),
		zap.Int("parsed", r.stats.parsed),
		zap.Duration("duration", r.took),
	}
	if w.delivered && r.fingerprint == w.lastFP {
		w.log.Debug("config dir reloaded; unchanged", fields...)
		return
	}
	w.log.Info("config dir loaded", fields...)
	w.delivered, w.lastFP = true, r.fingerprint
	onChange(r.result)
}

type reloaded struct {
	result      *Result
	fingerprint [sha256.Size]byte
	stats       buildStats
	took        time.Duration
}

// reload scans the directory, updates the watches (before reading files, so
// a file created meanwhile produces an event) and builds a Result.
func (w *Watcher) reload() (*reloaded, error) {
	start := time.Now()
	sr, err := scan(w.root)
	if err != nil {
		w.dropWatches()
		w.degraded = true
		return nil, err
	}
	w.syncWatches(sr.dirs)
	res, fp, st := w.loader.build(w.root, sr)
	return &reloaded{result: res, fingerprint: fp, stats: st, took: time.Since(start)}, nil
}

// syncWatches watches every directory in dirs and stops watching the others.
// Adding is repeated on every reload: it is idempotent, and it re-attaches a
// directory that was removed and re-created under the same name.
func (w *Watcher) syncWatches(dirs []string) {
	if w.fsw == nil {
		return
	}
	want := make(map[string]bool, len(dirs))
	failed := false
	for _, d := range dirs {
		want[d] = true
		if err := w.fsw.Add(d); err != nil {
			if !failed && !w.degraded {
				w.log.Warn("cannot watch directory; polling", zap.String("path", d), zap.Error(err), zap.Duration("interval", w.pollInterval))
			}
			failed = true
			delete(want, d)
		}
	}
	for d := range w.watched {
		if !want[d] {
			_ = w.fsw.Remove(d) // usually already gone with the directory
		}
	}
	w.watched = want
	w.degraded = failed
}

func (w *Watcher) dropWatches() {
	if w.fsw == nil {
		return
	}
	for d := range w.watched {
		_ = w.fsw.Remove(d)
	}
	w.watched = map[string]bool{}
}
