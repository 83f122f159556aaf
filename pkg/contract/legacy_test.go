package contract

import (
	"encoding/json"
	"fmt"

	"github.com/wanotify/wanotify/schemas"
)

// The functions below are the schema-only codec: every document goes
// through the JSON Schema validator and encoding/json, nothing else. The
// tests hold the package's codec to the same accept/reject decisions and
// the same decoded values, and the benchmarks measure against it.

func legacyEncodeNotification(n *Notification) ([]byte, error) {
	if n.SchemaVersion == 0 {
		n.SchemaVersion = SchemaVersion
	}
	b, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode notification: %w", err)
	}
	if err := ValidateJSON(schemas.NotificationRequestedV1, b); err != nil {
		return nil, err
	}
	return b, nil
}

func legacyDecodeNotification(raw []byte) (*Notification, error) {
	if err := ValidateJSON(schemas.NotificationRequestedV1, raw); err != nil {
		return nil, err
	}
	var n Notification
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, &ValidationError{Schema: schemas.NotificationRequestedV1, Fields: []FieldError{{Reason: jsonErrorReason(err)}}}
	}
	return &n, nil
}

func legacyEncodeStatusEvent(e *StatusEvent) ([]byte, error) {
	if e.SchemaVersion == 0 {
		e.SchemaVersion = SchemaVersion
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode status event: %w", err)
	}
	if err := ValidateJSON(schemas.NotificationStatusV1, b); err != nil {
		return nil, err
	}
	return b, nil
}

func legacyDecodeStatusEvent(raw []byte) (*StatusEvent, error) {
	if err := ValidateJSON(schemas.NotificationStatusV1, raw); err != nil {
		return nil, err
	}
	var e StatusEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, &ValidationError{Schema: schemas.NotificationStatusV1, Fields: []FieldError{{Reason: jsonErrorReason(err)}}}
	}
	return &e, nil
}
