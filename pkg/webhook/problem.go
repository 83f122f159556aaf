package webhook

import (
	"net/http"

	"github.com/wanotify/wanotify/pkg/problem"
)

// Problem is an RFC 9457 problem document, the body of every error answer.
type Problem = problem.Problem

// Problem types.
const (
	problemBase           = problem.TypeBase
	ProblemInvalidPayload = problemBase + "invalid-webhook-payload"
	ProblemSignature      = problemBase + "invalid-signature"
	ProblemTooLarge       = problemBase + "payload-too-large"
	ProblemUnavailable    = problemBase + "status-store-unavailable"
	ProblemHandshake      = problemBase + "invalid-handshake"
)

func writeProblem(w http.ResponseWriter, p Problem) { problem.Write(w, &p) }
