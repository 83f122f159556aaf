package cli

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// What notifyctl prints comes largely from outside: provider error texts,
// sender names, record headers and payloads. A terminal obeys control
// characters in it (ESC sequences can retitle the window, rewrite what is
// on screen, or on some terminals answer with input of their own), so
// none reaches the terminal as it is: C0 controls, DEL, C1 controls,
// invalid UTF-8 and the bidirectional overrides that make text read
// other than it is are printed as visible escapes (\x1b, \u009b,
// \u202e). Printable Unicode is left alone.

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// escapeRune is r written as a visible escape.
func escapeRune(r rune) string {
	if r < 0x80 {
		return `\x` + strconv.FormatInt(int64(r)|0x100, 16)[1:]
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// Clean returns s with every control character (tabs and line breaks
// included: in a table they would forge cells and lines), invalid byte
// and bidirectional override escaped.
func Clean(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x` + strconv.FormatInt(int64(s[i])|0x100, 16)[1:])
		case unsafeRune(r):
			b.WriteString(escapeRune(r))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// printf is fmt.Fprintf with every string, error and fmt.Stringer
// argument cleaned: the format's own tabs and line breaks lay out the
// table, an argument's cannot.
func printf(w io.Writer, format string, args ...any) {
	fmt.Fprint(w, sprintf(format, args...))
}

// sprintf is fmt.Sprintf with printf's cleaning of the arguments.
func sprintf(format string, args ...any) string {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = Clean(v)
		case error:
			args[i] = Clean(v.Error())
		case fmt.Stringer:
			args[i] = Clean(v.String())
		}
	}
	return fmt.Sprintf(format, args...)
}

// terminalWriter escapes, in everything written through it, what a
// terminal would obey, except the line breaks and tabs of the layout. It
// is the last line of defence under the table printers (which clean
// their fields with printf as well). A rune split across two writes is
// held until it is whole.
type terminalWriter struct {
	w       io.Writer
	partial []byte
}

func (t *terminalWriter) Write(p []byte) (int, error) {
	data := p
	if len(t.partial) > 0 {
		data = append(t.partial, p...)
		t.partial = nil
	}
	var out bytes.Buffer
	for i := 0; i < len(data); {
		if !utf8.FullRune(data[i:]) {
			t.partial = append([]byte(nil), data[i:]...)
			break
		}
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			out.WriteString(`\x` + strconv.FormatInt(int64(data[i])|0x100, 16)[1:])
		case r == '\n' || r == '\t':
			out.WriteByte(byte(r))
		case unsafeRune(r):
			out.WriteString(escapeRune(r))
		default:
			out.Write(data[i : i+n])
		}
		i += n
	}
	if _, err := t.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a rune left incomplete at the end, escaped.
func (t *terminalWriter) Flush() error {
	if len(t.partial) == 0 {
		return nil
	}
	var out bytes.Buffer
	for _, c := range t.partial {
		out.WriteString(`\x` + strconv.FormatInt(int64(c)|0x100, 16)[1:])
	}
	t.partial = nil
	_, err := t.w.Write(out.Bytes())
	return err
}

// jsonSafe rewrites the runes encoding/json leaves raw but a terminal
// would obey (DEL, C1 controls, bidirectional overrides) as \u escapes.
// They only occur inside JSON strings, where the escape means the same
// rune, so the document is unchanged for a JSON reader. (encoding/json
// already escapes C0 controls and invalid UTF-8.)
func jsonSafe(b []byte) []byte {
	var out bytes.Buffer
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError && r >= 0x20 && unsafeRune(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[i : i+n])
		}
		i += n
	}
	return out.Bytes()
}
