package bodypool

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadGivesTheBodyAndRecyclesSmallBuffers(t *testing.T) {
	p := New(1 << 10)
	buf, err := p.Read(strings.NewReader(`{"a":1}`), 7)
	if err != nil || buf.String() != `{"a":1}` {
		t.Fatalf("Read: %q, %v", buf, err)
	}
	p.Release(buf)
	again, err := p.Read(strings.NewReader("x"), -1)
	if err != nil || again.String() != "x" {
		t.Fatalf("Read after Release: %q, %v (a recycled buffer must start empty)", again, err)
	}
}

func TestLargeBuffersAreNotKept(t *testing.T) {
	p := New(16)
	big, err := p.Read(bytes.NewReader(make([]byte, 4096)), 4096)
	if err != nil || big.Len() != 4096 {
		t.Fatalf("Read: %d bytes, %v", big.Len(), err)
	}
	p.Release(big)
	for range 100 { // sync.Pool may drop entries; it must never return this one
		b, _ := p.Read(strings.NewReader(""), 0)
		if b == big {
			t.Fatal("a buffer past the pool's limit came back from the pool")
		}
	}
}

func TestReadErrorIsReturned(t *testing.T) {
	p := New(1 << 10)
	want := errors.New("connection reset")
	if buf, err := p.Read(io.MultiReader(strings.NewReader("part"), errReader{want}), 10); !errors.Is(err, want) || buf != nil {
		t.Fatalf("Read: %v, %v; want nil and %v", buf, err, want)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
