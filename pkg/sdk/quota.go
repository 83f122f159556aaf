package sdk

import (
	"errors"
	"fmt"
	"time"

	"github.com/wanotify/wanotify/pkg/lanes"
)

// ErrQuotaExceeded is matched (errors.Is) by every *QuotaError.
var ErrQuotaExceeded = errors.New("daily quota exceeded")

// QuotaError is returned by Publish (and in a batch's Result) for a
// notification past Options.DailyCaps for its lane: nothing was
// produced. RetryAfter is the time until the next UTC day, when the count
// starts again.
type QuotaError struct {
	Tenant     string
	Lane       lanes.Lane
	Limit      int64
	RetryAfter time.Duration
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("sdk: tenant %q has used its %d notifications of the %s lane for today (UTC); retry in %s",
		e.Tenant, e.Limit, e.Lane, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }
