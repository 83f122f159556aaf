package webhook

import (
	"encoding/json"
	"net/http"

	"github.com/wanotify/wanotify/pkg/contract"
)

// Problem is an RFC 9457 problem document, the body of every error answer.
type Problem struct {
	Type   string                `json:"type"`
	Title  string                `json:"title"`
	Status int                   `json:"status"`
	Detail string                `json:"detail,omitempty"`
	Errors []contract.FieldError `json:"errors,omitempty"`
}

// Problem types.
const (
	problemBase           = "https://wanotify.dev/problems/"
	ProblemInvalidPayload = problemBase + "invalid-webhook-payload"
	ProblemSignature      = problemBase + "invalid-signature"
	ProblemTooLarge       = problemBase + "payload-too-large"
	ProblemUnavailable    = problemBase + "status-store-unavailable"
	ProblemHandshake      = problemBase + "invalid-handshake"
)

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
