package simulator

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/metawebhook"
)

// plannedStatus is one status webhook of one message.
type plannedStatus struct {
	status string
	at     time.Time // when it happened: the payload timestamp
	code   int       // failed only
}

// planStatuses decides one accepted message's status story: what happens
// when, then in which order and how often it is reported.
func (s *Simulator) planStatuses(b *Behavior, accepted time.Time) (story []plannedStatus, due []time.Time) {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	r := s.rng
	coin := func(p float64) bool { return p > 0 && (p >= 1 || r.Float64() < p) }

	sent := accepted.Add(b.SentDelay.Sample(r))
	story = append(story, plannedStatus{status: "sent", at: sent})
	next := sent.Add(b.DeliveredDelay.Sample(r))
	if coin(b.AsyncFailRate) {
		code := b.AsyncFailCodes[r.IntN(len(b.AsyncFailCodes))]
		story = append(story, plannedStatus{status: "failed", at: next, code: code})
	} else {
		skip := coin(b.SkipDeliveredRate)
		if !skip {
			story = append(story, plannedStatus{status: "delivered", at: next})
		}
		if coin(b.ReadRate) {
			story = append(story, plannedStatus{status: "read", at: next.Add(b.ReadDelay.Sample(r))})
		}
	}

	// Arrival times: in order, unless shuffled among the statuses.
	due = make([]time.Time, len(story))
	for i, st := range story {
		due[i] = st.at
	}
	if len(story) > 1 && coin(b.OutOfOrderRate) {
		perm := make([]int, len(story))
		for {
			for i := range perm {
				perm[i] = i
			}
			r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			if !slices.IsSorted(perm) {
				break
			}
		}
		shuffled := make([]time.Time, len(due))
		for i, p := range perm {
			shuffled[i] = due[p]
		}
		due = shuffled
	}

	// Duplicates: the same status again a little later.
	n := len(story)
	for i := range n {
		if coin(b.DuplicateRate) {
			story = append(story, story[i])
			due = append(due, due[i].Add(time.Duration(1+r.IntN(100))*time.Millisecond))
		}
	}
	return story, due
}

func (s *Simulator) scheduleStatuses(e Entry, b *Behavior) {
	story, due := s.planStatuses(b, e.Time)
	for i, st := range story {
		body, err := json.Marshal(s.statusPayload(e, st))
		if err != nil {
			continue
		}
		s.hooks.enqueue(due[i], body)
	}
}

// statusPayload is Meta's webhook shape for one status.
func (s *Simulator) statusPayload(e Entry, st plannedStatus) metawebhook.Payload {
	ms := metawebhook.Status{
		ID:                    e.MessageID,
		Status:                st.status,
		Timestamp:             strconv.FormatInt(st.at.Unix(), 10),
		RecipientID:           strings.TrimPrefix(e.Recipient, "+"),
		BizOpaqueCallbackData: e.NotificationID,
	}
	switch st.status {
	case "failed":
		ms.Errors = []metawebhook.Error{{
			Code:      st.code,
			Title:     statusErrorTitle(st.code),
			Message:   statusErrorTitle(st.code),
			ErrorData: &metawebhook.ErrorData{Details: "simulated failure"},
		}}
	case "sent", "delivered":
		category := "service"
		if e.Type == "template" {
			category = "utility"
		}
		ms.Pricing = json.RawMessage(`{"billable":true,"pricing_model":"PMP","category":"` + category + `"}`)
	}
	return metawebhook.Payload{
		Object: "whatsapp_business_account",
		Entry: []metawebhook.Entry{{
			ID: s.cfg.WABAID,
			Changes: []metawebhook.Change{{
				Field: "messages",
				Value: metawebhook.Value{
					MessagingProduct: "whatsapp",
					Metadata:         metawebhook.Metadata{DisplayPhoneNumber: e.Sender, PhoneNumberID: e.Sender},
					Statuses:         []metawebhook.Status{ms},
				},
			}},
		}},
	}
}

func statusErrorTitle(code int) string {
	if m, ok := metaMessages[code]; ok {
		return m
	}
	return "Message failed to send"
}
