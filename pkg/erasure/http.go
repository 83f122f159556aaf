package erasure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/problem"
)

// Token is one credential of the erase API: who holds it (recorded as the
// erasure's actor) and the SHA-256 of the bearer token.
type Token struct {
	Name string
	Hash [sha256.Size]byte
}

// ParseTokens reads "name:sha256hex" entries (the format of
// WANOTIFY_SINK_ERASE_TOKENS; hash a token with printf %s "$TOKEN" |
// sha256sum).
func ParseTokens(entries []string) ([]Token, error) {
	var out []Token
	var errs []error
	for i, e := range entries {
		name, hexHash, ok := strings.Cut(e, ":")
		raw, err := hex.DecodeString(hexHash)
		if !ok || name == "" || err != nil || len(raw) != sha256.Size {
			errs = append(errs, fmt.Errorf("entry %d: want name:sha256hex (64 hex digits; hash a token with: printf %%s \"$TOKEN\" | sha256sum)", i+1))
			continue
		}
		var t Token
		t.Name = name
		copy(t.Hash[:], raw)
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// maxBody bounds an erase request.
const maxBody = 8 << 10

// eraser is what the API needs of an Eraser.
type eraser interface {
	Erase(ctx context.Context, r Request) (*Result, error)
	Find(ctx context.Context, recipient string) ([]Audit, error)
}

var _ eraser = (*Eraser)(nil)

// Handler serves the operator's erase API:
//
//	POST /v1/erasures         {"recipient": "+447700900123", "tenant": "acme", "reason": "ticket 42"}
//	POST /v1/erasures/lookup  {"recipient": "+447700900123"}
//
// Both need "Authorization: Bearer <token>" with a token of tokens; the
// number travels in the body, never in the URL, so access logs do not
// keep it. An erase answers 200 with the Result once every table is
// clear; lookup answers the audit rows of that number's erasures. Errors
// are problem+json naming the field. Without tokens every request is
// refused: the API is off.
func Handler(e eraser, tokens []Token, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{e: e, tokens: tokens, log: log}
	r := mux.NewRouter()
	r.HandleFunc("/v1/erasures", h.erase).Methods(http.MethodPost)
	r.HandleFunc("/v1/erasures/lookup", h.lookup).Methods(http.MethodPost)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		problem.Write(w, &problem.Problem{Type: problem.TypeBase + "not-found", Title: "Not found", Status: http.StatusNotFound})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		problem.Write(w, &problem.Problem{Type: problem.TypeBase + "method-not-allowed", Title: "Method not allowed", Status: http.StatusMethodNotAllowed})
	})
	return r
}

type handler struct {
	e      eraser
	tokens []Token
	log    *slog.Logger
}

// actor returns the name of the token r carries, "" when none matches.
// Every configured token is compared, in constant time.
func (h *handler) actor(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	name := ""
	for _, t := range h.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.Hash[:]) == 1 && name == "" {
			name = t.Name
		}
	}
	return name
}

type body struct {
	Recipient string `json:"recipient"`
	Tenant    string `json:"tenant,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// read authenticates and decodes the request; it answers itself and
// returns false when it cannot go on.
func (h *handler) read(w http.ResponseWriter, r *http.Request) (string, body, bool) {
	var b body
	actor := h.actor(r)
	if actor == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wanotify-erase"`)
		problem.Write(w, &problem.Problem{Type: problem.TypeBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "a bearer token of WANOTIFY_SINK_ERASE_TOKENS is required"})
		return "", b, false
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		problem.Write(w, &problem.Problem{Type: problem.TypeBase + "too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("at most %d bytes", maxBody)})
		return "", b, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		badRequest(w, "", "body must be a JSON object with recipient, and optionally tenant and reason: "+err.Error())
		return "", b, false
	}
	return actor, b, true
}

func badRequest(w http.ResponseWriter, field, reason string) {
	problem.Write(w, &problem.Problem{Type: problem.TypeBase + "invalid-request", Title: "Invalid request", Status: http.StatusBadRequest,
		Errors: []contract.FieldError{{Field: field, Reason: reason}}})
}

// invalid answers 400 naming every bad field of err.
func invalid(w http.ResponseWriter, err error) {
	var fields []contract.FieldError
	var collect func(error)
	collect = func(err error) {
		var fe *FieldError
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				collect(e)
			}
		} else if errors.As(err, &fe) {
			fields = append(fields, contract.FieldError{Field: "/" + fe.Field, Reason: fe.Reason})
		}
	}
	collect(err)
	if len(fields) == 0 {
		fields = []contract.FieldError{{Reason: err.Error()}}
	}
	problem.Write(w, &problem.Problem{Type: problem.TypeBase + "invalid-request", Title: "Invalid request", Status: http.StatusBadRequest, Errors: fields})
}

func (h *handler) erase(w http.ResponseWriter, r *http.Request) {
	actor, b, ok := h.read(w, r)
	if !ok {
		return
	}
	req := Request{Recipient: b.Recipient, Tenant: b.Tenant, Reason: b.Reason, Actor: actor, Via: "api"}
	if _, err := req.Validate(); err != nil {
		invalid(w, err)
		return
	}
	res, err := h.e.Erase(r.Context(), req)
	if err != nil {
		h.log.Error("erasure failed; it may be run again", "recipient", phone.Mask(b.Recipient), "tenant", b.Tenant, "actor", actor, "err", err)
		problem.Write(w, &problem.Problem{Type: problem.TypeBase + "erasure-failed", Title: "Erasure incomplete", Status: http.StatusServiceUnavailable,
			Detail: "ClickHouse did not complete the erasure; nothing was recorded and the request may be sent again"})
		return
	}
	h.log.Info("erased", "erasure_id", res.ErasureID, "recipient", phone.Mask(b.Recipient), "tenant", b.Tenant, "actor", actor,
		"notifications", res.Notifications)
	writeJSON(w, res)
}

func (h *handler) lookup(w http.ResponseWriter, r *http.Request) {
	_, b, ok := h.read(w, r)
	if !ok {
		return
	}
	as, err := h.e.Find(r.Context(), b.Recipient)
	if errors.Is(err, ErrInvalid) {
		invalid(w, err)
		return
	}
	if err != nil {
		problem.Write(w, &problem.Problem{Type: problem.TypeBase + "unavailable", Title: "Audit unavailable", Status: http.StatusServiceUnavailable})
		return
	}
	if as == nil {
		as = []Audit{}
	}
	writeJSON(w, map[string]any{"erasures": as})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
