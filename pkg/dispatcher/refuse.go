package dispatcher

import (
	"time"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/dispatcher/admit"
	"github.com/wanotify/wanotify/pkg/dispatcher/dedupe"
	"github.com/wanotify/wanotify/pkg/envelope"
)

// refusedOutcome is the terminal outcome of a record the admit stage
// refused: failed, permanent, with the refusal's code and reason.
func refusedOutcome(attempt int, err error) outcome {
	info := contract.ErrorInfo{Code: "not_admitted", Message: err.Error(), Retryable: false}
	if r, ok := admit.AsRefused(err); ok {
		info = r.Info()
	}
	now := time.Now()
	return outcome{state: dedupe.StateFailed, attempt: attempt, at: now, err: &info, class: envelope.ClassPermanent, failedAt: now}
}
