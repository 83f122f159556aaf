package provider

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Codes of failures that never left this process: the message was
// refused before any request was made.
const (
	CodeInvalidMessage = "invalid_message" // the client refused the message (missing template or text, bad fields)
	CodeBadRequest     = "bad_request"     // the request could not be built
	CodeUnknownSender  = "unknown_sender"  // the sender has no route (pkg/provider/route)
)

// NotAccepted reports whether the failure proves the provider did not
// take the message, so that sending it by another route cannot make a
// second WhatsApp message. It holds only for:
//
//   - a refusal before any request left the process (CodeInvalidMessage,
//     CodeBadRequest, CodeUnknownSender);
//   - a connection that could not be made (a dial error: refused, no
//     route, unknown host), so no byte of the request was sent;
//   - an answer below 500 with a Meta code whose table row says so (Rule.NotAccepted);
//   - an answer below 500 without a code that refuses the request
//     (4xx other than 408: 400, 401, 403, 404, 413, 422, 429, …).
//
// Everything else may have been taken: a timeout (also a connect
// timeout), a cancelled call, a connection reset or a response cut
// short after the request went out, any 5xx, 408, a failure body on a
// 2xx, and codes the table does not know or marks as maybe taken.
func (e *Error) NotAccepted() bool {
	if e == nil {
		return false
	}
	switch e.Code {
	case CodeInvalidMessage, CodeBadRequest, CodeUnknownSender:
		return true
	case "timeout", "canceled":
		return false
	case "network":
		return e.HTTPStatus == 0 && dialFailed(e.Err)
	}
	if e.HTTPStatus >= 500 {
		return false
	}
	if c, ok := strings.CutPrefix(e.Code, "meta_"); ok {
		code, err := strconv.Atoi(c)
		if err != nil {
			return false
		}
		r, known := (*builtin)[code]
		return known && r.NotAccepted
	}
	if c, ok := strings.CutPrefix(e.Code, "http_"); ok {
		status, err := strconv.Atoi(c)
		return err == nil && status == e.HTTPStatus && status >= 400 && status < 500 && status != http.StatusRequestTimeout
	}
	return false
}

// dialFailed reports whether err is a failure to open the connection:
// nothing of the request was written.
func dialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && !op.Timeout() {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) && !dns.IsTimeout
}
