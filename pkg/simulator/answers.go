package simulator

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// The answers of the two APIs the simulator speaks, and a reset for
// connection-level failures.

func resetConn(w http.ResponseWriter) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST rather than FIN: a connection-level failure
	}
	_ = conn.Close()
	return true
}

type xpressbotWriter struct{ w http.ResponseWriter }

func (x xpressbotWriter) ok(e Entry) {
	writeJSON(x.w, http.StatusOK, map[string]any{
		"success": true,
		"data":    map[string]any{"message_id": e.MessageID, "status": "accepted"},
		"message": "Message queued",
	})
}

func (x xpressbotWriter) fail(f failure) {
	if f.retryAfter > 0 {
		x.w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	body := map[string]any{"success": false, "message": f.msg}
	if f.code != 0 {
		body["data"] = map[string]any{"error": map[string]any{"code": f.code, "message": f.msg}}
	}
	writeJSON(x.w, f.status, body)
}

type cloudWriter struct{ w http.ResponseWriter }

func (c cloudWriter) ok(e Entry) {
	writeJSON(c.w, http.StatusOK, map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]string{{"input": strings.TrimPrefix(e.Recipient, "+"), "wa_id": strings.TrimPrefix(e.Recipient, "+")}},
		"messages":          []map[string]string{{"id": e.MessageID}},
	})
}

func (c cloudWriter) fail(f failure) {
	if f.retryAfter > 0 {
		c.w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	typ := "OAuthException"
	if f.code == 0 {
		typ = "ServiceException"
	}
	e := map[string]any{"message": f.msg, "type": typ, "fbtrace_id": "sim"}
	if f.code != 0 {
		e["code"] = f.code
	}
	writeJSON(c.w, f.status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
