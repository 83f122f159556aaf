package dispatcher

import (
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestLaneOfFollowsTheRecordsLane(t *testing.T) {
	for _, c := range []struct {
		lane, eventType, topic string
		want                   lanes.Lane
	}{
		// Ingest chose transactional for an OTP of a tenant not allowed
		// critical: the dispatcher must not promote it.
		{"transactional", "otp", topics.Requested, lanes.Transactional},
		{"bulk", "otp", topics.Retry5s, lanes.Bulk},
		{"critical", "invoice.reminder", topics.Requested, lanes.Critical},
		// No lane in the value: the topic's, else the event type's.
		{"", "invoice.reminder", topics.Critical, lanes.Critical},
		{"", "otp", topics.Requested, lanes.Critical},
		{"", "campaign.x", topics.Requested, lanes.Bulk},
		{"", "invoice.reminder", topics.Bulk, lanes.Bulk},
	} {
		n := &contract.Notification{Lane: c.lane, EventType: c.eventType}
		if got := laneOf(n, c.topic); got != c.want {
			t.Errorf("lane %q event %q topic %s: %s, want %s", c.lane, c.eventType, c.topic, got, c.want)
		}
	}
}

func TestOriginKeysOfTheLanesNeverMeet(t *testing.T) {
	seen := map[int64]string{}
	for _, topic := range []string{topics.Critical, topics.Requested, topics.Bulk} {
		for _, off := range []int64{0, 1, 1 << 40} {
			k := originKey(envelope.Origin{Topic: topic, Offset: off})
			if prev, ok := seen[k]; ok {
				t.Fatalf("%s@%d and %s share origin key %d", topic, off, prev, k)
			}
			seen[k] = topic
		}
	}
	if originKey(envelope.Origin{Topic: topics.Requested, Offset: 42}) != 42 {
		t.Fatal("notifications.requested keeps the bare offset, as entries written before the lanes have it")
	}
}
