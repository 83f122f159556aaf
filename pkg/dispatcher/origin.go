package dispatcher

import (
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/envelope"
	"github.com/wanotify/wanotify/pkg/lanes"
)

// laneOf is a notification's lane: the one it carries (ingest and the SDK
// chose it within what the tenant may use; retries keep it in the value),
// else the lane of the topic its request came on, or, for
// notifications.requested (where producers that know no lanes write), the
// lane its event type gets.
func laneOf(n *contract.Notification, originTopic string) lanes.Lane {
	if l, err := lanes.Parse(n.Lane); err == nil {
		return l
	}
	if l, ok := lanes.OfTopic(originTopic); ok && l != lanes.Transactional {
		return l
	}
	return lanes.Derive(n.EventType)
}

// laneShift places a lane's offsets apart in a dedupe entry's origin:
// the lanes are topics of their own, each with offsets from 0, so an
// offset alone no longer tells one request from another.
const laneShift = 56

// originKey is the request a dedupe entry belongs to: its offset on its
// lane's topic, with the lane in the top bits. The transactional lane
// (notifications.requested) keeps the bare offset, as entries written
// before the lanes have it.
func originKey(o envelope.Origin) int64 {
	l, ok := lanes.OfTopic(o.Topic)
	if !ok || l == lanes.Transactional {
		return o.Offset
	}
	return int64(l.Index()+1)<<laneShift | o.Offset
}
