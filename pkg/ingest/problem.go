package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/problem"
)

// Problem is an RFC 9457 problem detail. Errors names each bad field of a
// request by JSON pointer.
type Problem = problem.Problem

// ProblemContentType is the media type of every error answer.
const ProblemContentType = problem.ContentType

// Problem types. They are stable identifiers callers may switch on.
const (
	problemBase          = problem.TypeBase
	TypeInvalid          = problemBase + "invalid-request"
	TypeUnauthorized     = problemBase + "unauthorized"
	TypeTooLarge         = problemBase + "body-too-large"
	TypeUnsupportedMedia = problemBase + "unsupported-media-type"
	TypeUnavailable      = problemBase + "unavailable"
	TypeNotFound         = problemBase + "not-found"
	TypeMethodNotAllowed = problemBase + "method-not-allowed"
	TypeNotImplemented   = problemBase + "not-implemented"
	TypeInternal         = problemBase + "internal"
)

func invalid(err error) *Problem {
	p := &Problem{Type: TypeInvalid, Title: "The request is invalid", Status: http.StatusBadRequest}
	var ve *contract.ValidationError
	if errors.As(err, &ve) {
		p.Errors = ve.Fields
		if len(ve.Fields) == 1 {
			p.Detail = ve.Fields[0].String()
		} else {
			p.Detail = strconv.Itoa(len(ve.Fields)) + " fields are invalid"
		}
		return p
	}
	p.Detail = err.Error()
	return p
}

func unavailable(detail string) *Problem {
	return &Problem{Type: TypeUnavailable, Title: "Temporarily unable to accept notifications", Status: http.StatusServiceUnavailable, Detail: detail}
}

// writeProblem writes p and returns its status.
func writeProblem(w http.ResponseWriter, p *Problem) int { return problem.Write(w, p) }

// writeJSON writes v as JSON with status and returns status.
func writeJSON(w http.ResponseWriter, status int, v any) int {
	body, err := json.Marshal(v)
	if err != nil {
		return writeProblem(w, &Problem{Type: TypeInternal, Title: "Internal error", Status: http.StatusInternalServerError})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}
