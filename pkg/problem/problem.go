// Package problem writes RFC 9457 problem details, the body of every error
// answer of wanotify's HTTP APIs, so ingest and the webhook receiver name
// bad fields the same way.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/wanotify/wanotify/pkg/contract"
)

// ContentType is the media type of every error answer.
const ContentType = "application/problem+json"

// TypeBase prefixes every problem type URI.
const TypeBase = "https://wanotify.dev/problems/"

// Problem is one problem document. Errors names each bad field by JSON
// pointer.
type Problem struct {
	Type   string                `json:"type"`
	Title  string                `json:"title"`
	Status int                   `json:"status"`
	Detail string                `json:"detail,omitempty"`
	Errors []contract.FieldError `json:"errors,omitempty"`
}

// Write sends p and returns the status written.
func Write(w http.ResponseWriter, p *Problem) int {
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"` + TypeBase + `internal","title":"Internal error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
	return p.Status
}
