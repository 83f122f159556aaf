// Package failover decides when a record may go through its sender's
// second route (the registry's `failover:`, docs/senders.md) instead of
// its own, and keeps, per record, which route may already have taken it.
//
// The rule (issue 19, item 5): while the primary route is down (the
// sender halted, or its breaker open), a record goes through the second
// route only if the primary has provably not taken it: it was refused
// before sending, or every call the primary got for it ended with an
// answer that proves it was not taken (provider.Error.NotAccepted: a
// refused connection, an account fault, a throughput refusal). Never
// after a timeout, a 5xx or any other outcome the primary may have
// accepted: the second route is another account, which does not share
// the primary's idempotency keys, so that would risk a second WhatsApp
// message. The same holds the other way: once the second route may have
// taken a record, the record stays on it.
package failover

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/provider"
)

// Route names which of a sender's two routes sent (or may have taken) a
// record. The values are those of contract.StatusEvent.Route.
type Route string

const (
	// Primary is the sender's own route.
	Primary Route = "primary"
	// Second is the sender's failover route.
	Second Route = "failover"
)

// History is what is known of a record's calls, as far as failover goes:
// which route, if any, may have taken it. The zero History is a record
// no route may have taken (never sent, or every call provably refused).
type History struct {
	// Pinned is the route that may have taken the record; empty: none.
	// A pinned record is only ever sent through that route again.
	Pinned Route
}

// After folds one call through route into h: an answer that does not
// prove the message was not taken (a success included) pins the record
// to that route.
func (h History) After(route Route, err error) History {
	if h.Pinned != "" {
		return h
	}
	if err == nil || !provider.AsError(err).NotAccepted() {
		return History{Pinned: route}
	}
	return h
}

// Decision is Decide's answer.
type Decision struct {
	// Failover: send the record through the second route now.
	Failover bool
	// Why says why not (or why), for logs and spans.
	Why string
}

// Decide says whether a record may go through its sender's second route.
//
// down is the caller's knowledge that the primary is halted or its
// breaker is open. h is the record's history before this moment. last
// is the primary's failure for the call just made; nil when the record
// was not sent to the primary this time (refused before sending: the
// sender halted, the breaker open).
func Decide(down bool, h History, last error) Decision {
	switch {
	case h.Pinned == Second:
		return Decision{true, "the second route may already have taken it: it stays there"}
	case h.Pinned != "":
		return Decision{false, "the primary may already have taken it (an earlier call)"}
	}
	if last != nil {
		pe := provider.AsError(last)
		if !pe.NotAccepted() {
			return Decision{false, fmt.Sprintf("the primary may have taken it (%s)", pe.Code)}
		}
		if !routeFault(pe) {
			// Refused for this message or recipient: the second route
			// would refuse it too, and its answer is the record's.
			return Decision{false, fmt.Sprintf("refused for the message, not the route (%s)", pe.Code)}
		}
	}
	if !down {
		return Decision{false, "the primary is up"}
	}
	if last != nil {
		return Decision{true, fmt.Sprintf("the primary is down and refused it (%s)", provider.AsError(last).Code)}
	}
	return Decision{true, "the primary is down and was not called"}
}

// routeFault reports whether a refusal is about the route (the number,
// the account, the connection) rather than the message or recipient.
// Transport failures carry no scope of their own: they are the route's.
func routeFault(pe *provider.Error) bool {
	return pe.Scope == provider.ScopeSender || (pe.HTTPStatus == 0 && pe.Code == "network")
}

// Header carries a record's History on the retry topics, bound to the
// attempt it describes: "<route or clean>@<attempt>". A record read
// back with a header of another attempt, or a retry record without one
// (written before failover existed, or by a path that does not keep
// it), is treated as pinned to the primary: nothing proves otherwise.
const Header = "wanotify-route-history"

const clean = "clean"

// HeaderValue renders h for the failure record of attempt.
func (h History) HeaderValue(attempt int) string {
	v := string(h.Pinned)
	if v == "" {
		v = clean
	}
	return v + "@" + strconv.Itoa(attempt)
}

// SetHeader returns hs with h's header for attempt (any earlier one
// replaced).
func SetHeader(hs []kgo.RecordHeader, h History, attempt int) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs)+1)
	for _, x := range hs {
		if x.Key != Header {
			out = append(out, x)
		}
	}
	return append(out, kgo.RecordHeader{Key: Header, Value: []byte(h.HeaderValue(attempt))})
}

// FromReplay reads the History of a record an operator replayed from the
// dead-letter topic: it starts over at attempt 1, but what its earlier
// attempts may have left at a route still holds, so the header counts
// whatever attempt it names. Without one, the record is taken as the
// primary's.
func FromReplay(hs []kgo.RecordHeader) History {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key != Header {
			continue
		}
		v, _, _ := strings.Cut(string(hs[i].Value), "@")
		switch Route(v) {
		case Second:
			return History{Pinned: Second}
		case clean:
			return History{}
		}
		break
	}
	return History{Pinned: Primary}
}

// FromRecord reads a record's History. retry says the record came from a
// retry topic (it has failure headers); prevAttempt is the attempt those
// headers say was made. A record fresh from notifications.requested has
// had no call.
func FromRecord(hs []kgo.RecordHeader, retry bool, prevAttempt int) History {
	if !retry {
		return History{}
	}
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key != Header {
			continue
		}
		v, at, ok := strings.Cut(string(hs[i].Value), "@")
		if n, err := strconv.Atoi(at); !ok || err != nil || n != prevAttempt {
			break
		}
		switch Route(v) {
		case Primary, Second:
			return History{Pinned: Route(v)}
		case clean:
			return History{}
		}
		break
	}
	return History{Pinned: Primary}
}
