package chlocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"
)

// LibVersion is the version of the @chdb/lib-linux-x64-gnu npm package this
// package is written and tested against (ClickHouse 26.7.2.1). Other
// releases, including the npm "latest" tag, do not start listeners.
const LibVersion = "26.7.3-stable.1"

// Defaults applied by Run to zero-valued Options fields.
const (
	DefaultListenHost   = "127.0.0.1"
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 30 * time.Second
)

// ErrAlreadyStarted is returned by Run when it was already called in this
// process. The library cannot host a second server in the same process.
var ErrAlreadyStarted = errors.New("chlocal: Run was already called in this process; start another process for another server")

// started guards against a second Run in the same process.
var started atomic.Bool

// Options configures Run.
type Options struct {
	// LibPath is the path to libchdb.so (see DefaultLibPath). Required.
	LibPath string
	// DataDir holds the server's databases; created if missing. Required.
	// Only one process may use a data directory at a time.
	DataDir string
	// TCPPort is the native-protocol port (ClickHouse's default is 9000).
	TCPPort int
	// HTTPPort is the HTTP interface port (ClickHouse's default is 8123).
	HTTPPort int
	// ListenHost is the address the listeners bind to; default 127.0.0.1.
	ListenHost string
	// StartTimeout bounds the wait for both listeners; default 60 s.
	StartTimeout time.Duration
	// StopTimeout bounds the wait for the library to return after it was
	// told to exit; default 30 s.
	StopTimeout time.Duration
	// OnReady, if set, is called once both listeners answer, with their
	// host:port addresses.
	OnReady func(tcpAddr, httpAddr string)
	// Logger receives the launcher's own logs; default slog.Default().
	Logger *slog.Logger
}

// Validate reports every invalid field of o, each error naming its field.
// LibPath must name an existing regular file.
func (o Options) Validate() error {
	var errs []error
	switch {
	case o.LibPath == "":
		errs = append(errs, errors.New("LibPath is empty (run scripts/fetch-clickhouse.sh to fetch libchdb.so)"))
	default:
		fi, err := os.Stat(o.LibPath)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("LibPath %q: %w (run scripts/fetch-clickhouse.sh to fetch libchdb.so)", o.LibPath, err))
		case !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("LibPath %q is not a regular file", o.LibPath))
		}
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("DataDir is empty"))
	}
	if o.TCPPort < 1 || o.TCPPort > 65535 {
		errs = append(errs, fmt.Errorf("TCPPort %d is out of range 1-65535", o.TCPPort))
	}
	if o.HTTPPort < 1 || o.HTTPPort > 65535 {
		errs = append(errs, fmt.Errorf("HTTPPort %d is out of range 1-65535", o.HTTPPort))
	}
	if o.TCPPort == o.HTTPPort && o.TCPPort != 0 {
		errs = append(errs, fmt.Errorf("TCPPort and HTTPPort are both %d; they must differ", o.TCPPort))
	}
	if o.ListenHost != "" && net.ParseIP(o.ListenHost) == nil {
		errs = append(errs, fmt.Errorf("ListenHost %q is not an IP address", o.ListenHost))
	}
	if o.StartTimeout < 0 {
		errs = append(errs, fmt.Errorf("StartTimeout %s is negative", o.StartTimeout))
	}
	if o.StopTimeout < 0 {
		errs = append(errs, fmt.Errorf("StopTimeout %s is negative", o.StopTimeout))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.ListenHost == "" {
		o.ListenHost = DefaultListenHost
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// CacheDir returns the directory scripts/fetch-clickhouse.sh downloads into:
// $WANOTIFY_CACHE, else $XDG_CACHE_HOME/wanotify, else ~/.cache/wanotify.
func CacheDir() string {
	if d := os.Getenv("WANOTIFY_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "wanotify")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cache", "wanotify")
}

// DefaultLibPath returns where scripts/fetch-clickhouse.sh installs
// libchdb.so: CacheDir()/chdb-<LibVersion>/libchdb.so.
func DefaultLibPath() string {
	return filepath.Join(CacheDir(), "chdb-"+LibVersion, "libchdb.so")
}

// library holds the resolved entry points of libchdb.so.
type library struct {
	queryCmdline  func(argc int32, argv **byte) uintptr
	resultError   func(res uintptr) string // optional
	destroyResult func(res uintptr)        // optional
}

func loadLibrary(path string) (*library, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("chlocal: load %s: %w", path, err)
	}
	var lib library
	sym, err := purego.Dlsym(h, "chdb_query_cmdline")
	if err != nil {
		return nil, fmt.Errorf("chlocal: %s has no chdb_query_cmdline (want @chdb/lib-linux-x64-gnu@%s): %w", path, LibVersion, err)
	}
	purego.RegisterFunc(&lib.queryCmdline, sym)
	if sym, err := purego.Dlsym(h, "chdb_result_error"); err == nil {
		purego.RegisterFunc(&lib.resultError, sym)
	}
	if sym, err := purego.Dlsym(h, "chdb_destroy_query_result"); err == nil {
		purego.RegisterFunc(&lib.destroyResult, sym)
	}
	return &lib, nil
}

// cArgv builds a NUL-terminated, nil-terminated C argv in Go memory. The
// caller must keep the returned slices alive while C uses them.
func cArgv(args []string) (argv []*byte, keep [][]byte) {
	argv = make([]*byte, len(args)+1)
	keep = make([][]byte, len(args))
	for i, a := range args {
		b := make([]byte, len(a)+1)
		copy(b, a)
		keep[i] = b
		argv[i] = &b[0]
	}
	return argv, keep
}

// serverArgs returns the clickhouse-local command line that turns the library
// into a server listening on the given ports.
func serverArgs(o Options, dataDir string) []string {
	return []string{
		"clickhouse",
		"--path=" + dataDir,
		"--interactive",
		"--multiquery",
		// Keep the interactive client's history with the data, not in
		// $XDG_STATE_HOME.
		"--history_file=" + filepath.Join(dataDir, "client-history"),
		"--query", "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP",
		"--",
		"--tcp_port=" + strconv.Itoa(o.TCPPort),
		"--http_port=" + strconv.Itoa(o.HTTPPort),
		"--listen_host=" + o.ListenHost,
	}
}

// Run starts ClickHouse on o's ports and serves until ctx is done, then
// stops it and waits for it to finish (at most o.StopTimeout). It returns nil
// after a clean stop caused by ctx, and an error if the server could not
// start, did not become ready within o.StartTimeout, stopped on its own, or
// did not stop in time. Run may be called only once per process.
//
// The library prints its own errors (for example "Address already in use")
// on standard error.
//
// Close client connections before cancelling ctx: ClickHouse waits up to its
// shutdown_wait_unfinished setting (5 s) for open connections and, if any
// remain, ends the whole process itself with exit status 0 ("Will shutdown
// forcefully"), so Run never returns. In the wanotify-clickhouse binary that
// is only a slower stop; a process that must outlive its server should run it
// in a child process.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("chlocal: invalid options: %w", err)
	}
	if started.Load() {
		return ErrAlreadyStarted
	}
	o = o.withDefaults()
	log := o.Logger

	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("chlocal: DataDir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("chlocal: DataDir: %w", err)
	}
	if err := checkDataDirFree(dataDir); err != nil {
		return err
	}
	tcpAddr := net.JoinHostPort(o.ListenHost, strconv.Itoa(o.TCPPort))
	httpAddr := net.JoinHostPort(o.ListenHost, strconv.Itoa(o.HTTPPort))
	for _, p := range []struct{ field, addr string }{{"TCPPort", tcpAddr}, {"HTTPPort", httpAddr}} {
		if err := checkPortFree(p.addr); err != nil {
			return fmt.Errorf("chlocal: %s: %w", p.field, err)
		}
	}

	if !started.CompareAndSwap(false, true) {
		return ErrAlreadyStarted
	}

	begin := time.Now()
	lib, err := loadLibrary(o.LibPath)
	if err != nil {
		return err
	}
	log.Debug("clickhouse library loaded", "lib", o.LibPath, "elapsed", time.Since(begin).String())

	stdin, err := redirectStdin()
	if err != nil {
		return err
	}
	// libReturned records that chdb_query_cmdline returned. Standard input
	// is given back only then: a server still running keeps its (closed)
	// pipe rather than reading the process's real input.
	libReturned := false
	defer func() {
		if libReturned {
			stdin.restore()
		}
	}()
	stdout := filterStdout()
	defer stdout.restore()

	args := serverArgs(o, dataDir)
	argv, keep := cArgv(args)
	returned := make(chan string, 1)
	go func() {
		// The call serves until stdin reaches EOF; give it its own thread.
		runtime.LockOSThread()
		res := lib.queryCmdline(int32(len(args)), &argv[0])
		runtime.KeepAlive(argv)
		runtime.KeepAlive(keep)
		var msg string
		if res != 0 {
			if lib.resultError != nil {
				msg = lib.resultError(res)
			}
			if lib.destroyResult != nil {
				lib.destroyResult(res)
			}
		}
		returned <- msg
	}()
	log.Info("clickhouse starting", "data_dir", dataDir, "tcp", tcpAddr, "http", httpAddr)

	// stop tells the server to exit and waits for the call to return.
	stop := func() error {
		stdin.closeWriter()
		select {
		case msg := <-returned:
			libReturned = true
			if msg != "" {
				log.Warn("clickhouse reported an error while stopping", "error", msg)
			}
			return nil
		case <-time.After(o.StopTimeout):
			return fmt.Errorf("chlocal: clickhouse did not stop within %s", o.StopTimeout)
		}
	}

	readyCtx, cancelReady := context.WithTimeout(ctx, o.StartTimeout)
	defer cancelReady()
	readyErr := make(chan error, 1)
	go func() { readyErr <- waitListening(readyCtx, tcpAddr, httpAddr) }()

	select {
	case msg := <-returned:
		libReturned = true
		cancelReady()
		<-readyErr
		return earlyExitError("before it was ready", msg)
	case err := <-readyErr:
		if err != nil {
			stopErr := stop()
			if ctx.Err() != nil {
				log.Info("clickhouse stopped before it was ready", "elapsed", time.Since(begin).String())
				return stopErr
			}
			return errors.Join(fmt.Errorf("chlocal: clickhouse not ready within %s: %w", o.StartTimeout, err), stopErr)
		}
	}
	log.Info("clickhouse ready", "tcp", tcpAddr, "http", httpAddr, "elapsed", time.Since(begin).String())
	if o.OnReady != nil {
		o.OnReady(tcpAddr, httpAddr)
	}

	select {
	case msg := <-returned:
		libReturned = true
		return earlyExitError("on its own", msg)
	case <-ctx.Done():
	}
	if n, err := openConnections(httpAddr); err == nil && n > 0 {
		log.Warn("clickhouse stopping with client connections open; it waits up to 5 s for them, then ends the process itself",
			"connections", n)
	} else {
		log.Info("clickhouse stopping")
	}
	begin = time.Now()
	if err := stop(); err != nil {
		return err
	}
	log.Info("clickhouse stopped", "elapsed", time.Since(begin).String())
	return nil
}

func earlyExitError(when, msg string) error {
	if msg == "" {
		msg = "see its message on standard error"
	}
	return fmt.Errorf("chlocal: clickhouse stopped %s: %s", when, msg)
}

// checkPortFree reports whether addr can be listened on right now, so that a
// busy port gives a clear error instead of the library's message on stderr.
func checkPortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// checkDataDirFree fails when another process holds ClickHouse's lock on
// dataDir/status (ClickHouse takes an exclusive flock on that file).
func checkDataDirFree(dataDir string) error {
	f, err := os.Open(filepath.Join(dataDir, "status"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("chlocal: DataDir: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("chlocal: DataDir %s is in use by another ClickHouse process", dataDir)
		}
		return fmt.Errorf("chlocal: DataDir: lock %s: %w", f.Name(), err)
	}
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}
