// Package zktest runs a real ZooKeeper 3.8 server (Debian's
// libzookeeper-java) for tests: loopback only, a free port chosen at run
// time, data in t.TempDir(), stopped by PID in cleanup.
package zktest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// JarDir is where Debian installs the ZooKeeper jars.
const JarDir = "/usr/share/java"

var jars = []string{"zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar"}

// Available says why a server cannot be started here (nil if it can).
func Available() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("java not found (apt-get install openjdk-17-jre-headless): %w", err)
	}
	for _, j := range jars {
		if _, err := os.Stat(filepath.Join(JarDir, j)); err != nil {
			return fmt.Errorf("ZooKeeper jar missing (apt-get install libzookeeper-java): %w", err)
		}
	}
	return nil
}

// Require fails the test under CI=true and skips it elsewhere when no
// server can be started.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ZooKeeper needed: %v", err)
		}
		t.Skipf("ZooKeeper not available (CI=true makes this a failure): %v", err)
	}
}

// Server is one running (or stopped) ZooKeeper server.
type Server struct {
	t    testing.TB
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Start starts a server and waits until it answers ruok; Stop runs in
// cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
	cfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
minSessionTimeout=1000
maxSessionTimeout=60000
`, filepath.Join(s.dir, "data"), s.port)
	if err := os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.start()
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Port is the server's client port.
func (s *Server) Port() int { return s.port }

func (s *Server) start() {
	s.t.Helper()
	cp := make([]string, len(jars))
	for i, j := range jars {
		cp[i] = filepath.Join(JarDir, j)
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command("java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", strings.Join(cp, ":"), "org.apache.zookeeper.server.ZooKeeperServerMain",
		filepath.Join(s.dir, "zoo.cfg"))
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("start ZooKeeper: %v", err)
	}
	s.cmd, s.log, s.done = cmd, logf, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.t.Fatalf("ZooKeeper exited at start:\n%s", s.Log())
		default:
		}
		if s.ruok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("ZooKeeper on %s not ready after 30s:\n%s", s.Addr(), s.Log())
}

// ruok is ZooKeeper's four-letter liveness check.
func (s *Server) ruok() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "imok")
}

// Stop kills the server by PID and waits for it to exit; its data stays
// for Restart. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("ZooKeeper pid %d did not exit", s.cmd.Process.Pid)
	}
	s.log.Close()
	s.cmd = nil
}

// Restart (re)starts the server on the same port with the same data:
// client sessions resume if they reconnect within their timeout.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Replace restarts the server on the same port without its data, as a
// rebuilt ensemble: every node and session is gone, and the server refuses
// clients that have seen a later zxid than its own.
func (s *Server) Replace() {
	s.t.Helper()
	s.Stop()
	if err := os.RemoveAll(filepath.Join(s.dir, "data")); err != nil {
		s.t.Fatal(err)
	}
	s.start()
}

// Log returns the server's output so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
