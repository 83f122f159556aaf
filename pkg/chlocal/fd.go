package chlocal

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// stdinPipe is the pipe whose read end replaces file descriptor 0 while the
// server runs. The server keeps serving until it reads EOF (or "exit").
type stdinPipe struct {
	saved     int // duplicate of the original fd 0, or -1 if fd 0 was closed
	writer    int // write end; -1 once closed
	closeOnce sync.Once
}

func redirectStdin() (*stdinPipe, error) {
	saved, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		saved = -1 // fd 0 was closed; the pipe may take its number
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		if saved >= 0 {
			unix.Close(saved)
		}
		return nil, fmt.Errorf("chlocal: stdin pipe: %w", err)
	}
	if p[0] != 0 {
		// Dup3 without O_CLOEXEC: fd 0 stays a normal standard input.
		if err := unix.Dup3(p[0], 0, 0); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			if saved >= 0 {
				unix.Close(saved)
			}
			return nil, fmt.Errorf("chlocal: redirect stdin: %w", err)
		}
		unix.Close(p[0])
	} else if _, err := unix.FcntlInt(0, unix.F_SETFD, 0); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, fmt.Errorf("chlocal: redirect stdin: %w", err)
	}
	return &stdinPipe{saved: saved, writer: p[1]}, nil
}

// closeWriter asks the server to exit and closes the write end, so the
// server sees EOF even if it ignores the command.
func (s *stdinPipe) closeWriter() {
	s.closeOnce.Do(func() {
		_, _ = unix.Write(s.writer, []byte("exit\n"))
		unix.Close(s.writer)
	})
}

// restore puts the original standard input back on fd 0 (or /dev/null if
// there was none).
func (s *stdinPipe) restore() {
	s.closeWriter()
	if s.saved >= 0 {
		_ = unix.Dup3(s.saved, 0, 0)
		unix.Close(s.saved)
		return
	}
	if fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Dup3(fd, 0, 0)
		unix.Close(fd)
	}
}

// stdoutFilter passes everything written to file descriptor 1 through to the
// original standard output with terminal escape sequences removed. The
// library writes bracketed-paste toggles and similar control codes to stdout
// as if it were talking to a terminal.
type stdoutFilter struct {
	saved int // duplicate of the original fd 1; -1 when inactive
	out   *os.File
	done  chan struct{}
}

// filterStdout installs the filter. It is best effort: on any failure
// standard output is left as it was.
func filterStdout() *stdoutFilter {
	f := &stdoutFilter{saved: -1}
	saved, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return f
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		unix.Close(saved)
		return f
	}
	if err := unix.Dup3(p[1], 1, 0); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		unix.Close(saved)
		return f
	}
	unix.Close(p[1]) // fd 1 now holds the only write reference
	_ = unix.SetNonblock(p[0], true)
	in := os.NewFile(uintptr(p[0]), "chlocal-stdout-pipe")
	f.saved = saved
	f.out = os.NewFile(uintptr(saved), "stdout")
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		defer in.Close()
		_, _ = io.Copy(&escapeStripper{w: f.out}, in)
	}()
	return f
}

// restore puts the original standard output back on fd 1, which closes the
// pipe's last write end, and waits briefly for the copier to drain it.
func (f *stdoutFilter) restore() {
	if f.saved < 0 {
		return
	}
	_ = unix.Dup3(f.saved, 1, 0)
	select {
	case <-f.done:
	case <-time.After(2 * time.Second):
		// Something (a child process) still holds the write end; leave the
		// copier running rather than block.
		return
	}
	f.out.Close()
	f.saved = -1
}

// escapeStripper removes ANSI/VT escape sequences (CSI, OSC and two-byte
// ESC sequences) from a byte stream, keeping state across writes. Once the
// underlying writer fails (say, a closed terminal) it discards everything, so
// the pipe keeps draining and writers to fd 1 never block or see EPIPE.
type escapeStripper struct {
	w      io.Writer
	state  int
	buf    []byte
	broken bool
}

const (
	escNormal = iota
	escEsc    // after ESC
	escCSI    // inside ESC [ ... final byte
	escOSC    // inside ESC ] ... BEL or ESC \
	escOSCEsc // ESC seen inside OSC
	escInterm // inside ESC, intermediate bytes ... final byte (e.g. ESC ( B)
)

func (s *escapeStripper) Write(p []byte) (int, error) {
	s.buf = s.buf[:0]
	for _, c := range p {
		switch s.state {
		case escNormal:
			if c == 0x1b {
				s.state = escEsc
			} else {
				s.buf = append(s.buf, c)
			}
		case escEsc:
			switch c {
			case '[':
				s.state = escCSI
			case ']':
				s.state = escOSC
			default:
				if c >= 0x20 && c <= 0x2f {
					s.state = escInterm
				} else {
					s.state = escNormal
				}
			}
		case escInterm:
			if c < 0x20 || c > 0x2f {
				s.state = escNormal
			}
		case escCSI:
			if c >= 0x40 && c <= 0x7e {
				s.state = escNormal
			}
		case escOSC:
			switch c {
			case 0x07:
				s.state = escNormal
			case 0x1b:
				s.state = escOSCEsc
			}
		case escOSCEsc:
			if c == '\\' {
				s.state = escNormal
			} else {
				s.state = escOSC
			}
		}
	}
	if len(s.buf) > 0 && !s.broken {
		if _, err := s.w.Write(s.buf); err != nil {
			s.broken = true
		}
	}
	return len(p), nil
}
