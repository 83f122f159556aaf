// Package bodypool reads HTTP request bodies into recycled buffers, for
// handlers that copy out everything they keep from a body before they
// answer (ingest, the webhook receiver): a buffer is free again once the
// request is decoded.
package bodypool

import (
	"bytes"
	"io"
	"sync"
)

// Pool recycles body buffers. Buffers that grew past the pool's limit are
// left to the garbage collector, so one large body does not pin its
// memory. The zero value is not usable; call New.
type Pool struct {
	max  int
	bufs sync.Pool
}

// New returns a pool that keeps buffers of up to maxPooled bytes.
func New(maxPooled int) *Pool {
	return &Pool{max: maxPooled, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Read reads r (bound it, e.g. with http.MaxBytesReader) into a buffer of
// the pool, sized from contentLength when the request gave one. On an
// error the buffer is already back in the pool. Otherwise hand it back
// with Release once nothing refers to its bytes.
func (p *Pool) Read(r io.Reader, contentLength int64) (*bytes.Buffer, error) {
	if contentLength > int64(p.max) {
		contentLength = 0
	}
	return p.ReadSized(r, contentLength)
}

// ReadSized is Read for a caller that has already accounted for a body
// of size bytes (see edgehttp.BodyGate): the buffer is sized for it at
// once, so reading a body of that size allocates size plus
// bytes.MinRead, not the up to twice as much that growing by doubling
// would. size <= 0: unknown, grown as it comes.
func (p *Pool) ReadSized(r io.Reader, size int64) (*bytes.Buffer, error) {
	buf := p.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	if size > 0 {
		buf.Grow(int(size) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		p.Release(buf)
		return nil, err
	}
	return buf, nil
}

// Release hands buf back to the pool.
func (p *Pool) Release(buf *bytes.Buffer) {
	if buf.Cap() <= p.max {
		buf.Reset()
		p.bufs.Put(buf)
	}
}
