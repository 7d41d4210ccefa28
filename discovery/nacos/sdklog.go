package nacos

import (
	"sync"

	sdklogger "github.com/nacos-group/nacos-sdk-go/v2/common/logger"
	"go.uber.org/zap"
)

var sdkLogOnce sync.Once

// setSDKLogger routes the SDK's process-wide logger to zap, once (the
// first watcher's logger, named "nacos-sdk"). Without it the SDK logs to
// files under its log dir and to stdout. Its levels are shifted down one
// step: it logs every reconnect attempt as an error, while the watcher
// reports what matters (health, failures) itself.
func setSDKLogger(log *zap.Logger) {
	sdkLogOnce.Do(func() {
		sdklogger.SetLogger(sdkLog{log.Named("nacos-sdk").WithOptions(zap.AddCallerSkip(1)).Sugar()})
	})
}

type sdkLog struct{ s *zap.SugaredLogger }

func (l sdkLog) Info(args ...interface{})               { l.s.Debug(args...) }
func (l sdkLog) Warn(args ...interface{})               { l.s.Info(args...) }
func (l sdkLog) Error(args ...interface{})              { l.s.Warn(args...) }
func (l sdkLog) Debug(args ...interface{})              { l.s.Debug(args...) }
func (l sdkLog) Infof(fmt string, args ...interface{})  { l.s.Debugf(fmt, args...) }
func (l sdkLog) Warnf(fmt string, args ...interface{})  { l.s.Infof(fmt, args...) }
func (l sdkLog) Errorf(fmt string, args ...interface{}) { l.s.Warnf(fmt, args...) }
func (l sdkLog) Debugf(fmt string, args ...interface{}) { l.s.Debugf(fmt, args...) }
