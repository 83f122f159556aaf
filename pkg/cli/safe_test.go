package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/logstore"
)

// hostile is text a provider or a sender name could carry: an OSC that
// retitles the terminal, a screen clear, a C1 CSI, a bidi override and a
// line break that would forge a table row.
const hostile = "bad\x1b]0;pwned\x07 \x1b[2J \u009b31m \u202egnp.exe\nStatus\tdelivered \x7f"

// terminalControls reports the first control character out would send a
// terminal (its own line breaks and tabs aside), or -1.
func terminalControls(out string) int {
	for i, r := range out {
		if r != '\n' && r != '\t' && unsafeRune(r) {
			return i
		}
	}
	return -1
}

func hostileView() statusView {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	v := &logstore.View{
		NotificationID: "n-1", Tenant: "acme", EventType: "otp", Status: "failed", Recipient: "+44******123",
		Sender: hostile, Provider: "xpressbot", ProviderMessageID: hostile, Template: hostile,
		Error:     &contract.ErrorInfo{Code: "meta_131026", Message: hostile},
		CreatedAt: now, UpdatedAt: now,
		Timeline: []logstore.Event{{Status: "failed", OccurredAt: now, Emitter: hostile, Attempt: 1,
			Error: &contract.ErrorInfo{Code: "meta_131026", Message: hostile}}},
	}
	return statusView{View: v}
}

// TestStatusPrintsNoTerminalControls: notifyctl status shows provider
// error texts and sender names; none of their control characters reaches
// the terminal, and a line break in them does not forge a line.
func TestStatusPrintsNoTerminalControls(t *testing.T) {
	sv := hostileView()
	for _, format := range []string{"table", "json"} {
		var out bytes.Buffer
		app := &App{Out: &out, Output: format}
		if err := app.Print(sv, func(w *tabwriter.Writer) { printStatus(w, sv) }); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if i := terminalControls(got); i >= 0 {
			t.Errorf("%s output sends control %q to the terminal: %q", format, []rune(got[i:])[0], got)
		}
		if format == "table" {
			if strings.Contains(got, "\nStatus\tdelivered") || strings.Count(got, "Status  ") > 1 || strings.Contains(got, "\nStatus  delivered") {
				t.Errorf("a line break in the data forged a line:\n%s", got)
			}
			if !strings.Contains(got, `\x1b]0;pwned\x07`) || !strings.Contains(got, `\u202e`) {
				t.Errorf("the escaped text is not shown visibly:\n%s", got)
			}
			continue
		}
		var back statusView
		if err := json.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("json output does not parse: %v", err)
		}
		if back.Error == nil || back.Error.Message != hostile {
			t.Errorf("json output changed the data: %+v", back.Error)
		}
	}
}

func TestCleanKeepsPrintableUnicode(t *testing.T) {
	for in, want := range map[string]string{
		"Entregado ✓ 日本語 👍": "Entregado ✓ 日本語 👍",
		"a\x1b[31mb":        `a\x1b[31mb`,
		"tab\there\r\n":     `tab\x09here\x0d\x0a`,
		"c1\u0085x":         `c1\u0085x`,
		"bad\xffutf8":       `bad\xffutf8`,
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
	// A rune split across two writes is judged whole.
	var out bytes.Buffer
	tw := &terminalWriter{w: &out}
	b := []byte("é\u009b")
	_, _ = tw.Write(b[:1])
	_, _ = tw.Write(b[1:3])
	_, _ = tw.Write(b[3:])
	if err := tw.Flush(); err != nil || out.String() != `é\u009b` {
		t.Errorf("split writes: %q, %v", out.String(), err)
	}
}

// The error a command fails with (a provider's or a broker's text) is
// printed cleaned too.
func TestErrorsPrintNoTerminalControls(t *testing.T) {
	got := Clean(errors.New("produce: " + hostile).Error())
	if terminalControls(got) >= 0 || strings.ContainsAny(got, "\n\t") {
		t.Errorf("Clean left controls: %q", got)
	}
}
