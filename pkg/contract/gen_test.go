package contract

import (
	"math/rand/v2"
	"strings"
	"time"
)

// The generators build values for the encode properties: every member is
// drawn mostly from valid values and sometimes from values at or just past
// a limit of the schema, so that both accepted and refused values, and
// the boundaries between them, come up often.

type pool[T any] struct {
	valid, edge []T
}

func (p pool[T]) draw(r *rand.Rand) T {
	if len(p.edge) > 0 && r.IntN(8) == 0 {
		return p.edge[r.IntN(len(p.edge))]
	}
	return p.valid[r.IntN(len(p.valid))]
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

// text returns a string pool with lengths around max (in code points,
// also as two-byte characters and as invalid UTF-8 bytes).
func text(min, max int, valid ...string) pool[string] {
	p := pool[string]{valid: valid}
	for _, n := range []int{min - 1, min, max, max + 1} {
		if n < 0 {
			continue
		}
		p.edge = append(p.edge, rep("a", n), rep("é", n), rep("\xff", n))
	}
	p.edge = append(p.edge, "", "<&>\u2028", "\x00", "\ufffd")
	return p
}

var (
	idPool        = text(1, 64, "6f1c2a4e-8a0b-5d7e-9c3f-2b1a0e9d8c7b", "n1", "A.b_c:d-9")
	idPoolEdge    = pool[string]{valid: idPool.valid, edge: append(append([]string{}, idPool.edge...), "a b", "a/b", "ü", "a+b")}
	keyPool       = text(1, 256, "u-1001:otp:2026-11-28T10:00:00Z", "k", "schlüssel")
	tenantPool    = pool[string]{valid: []string{"acme", "billing-co", "t_1", "0"}, edge: []string{"", "Acme", "-a", "_a", "a.b", rep("a", 64), rep("a", 65), "é"}}
	servicePool   = text(1, 128, "auth-api", "invoices", "Service Ω")
	eventTypePool = pool[string]{valid: []string{"otp", "invoice.reminder", "a-b_c.d", "9"}, edge: []string{"", ".a", "Otp", "a b", rep("a", 64), rep("a", 65)}}
	userPool      = text(0, 128, "", "u-1001", "cust-42")
	recipientPool = pool[string]{
		valid: []string{"+447700900123", "+14155550100", "+1234567", "+123456789012345"},
		edge:  []string{"", "+123456", "+1234567890123456", "+0123456789", "447700900123", "+44 7700900123", "+4477009001２3"},
	}
	senderPool   = text(1, 64, "acme-main", "billing", "123456789012345")
	templatePool = pool[string]{valid: []string{"otp_code", "invoice_due", "a", "x_1"}, edge: []string{"", "OTP", "otp-code", rep("a", 512), rep("a", 513)}}
	languagePool = pool[string]{
		valid: []string{"en", "en_US", "pt-BR", "zh_Hant_TW", "abc_abcdefgh"},
		edge:  []string{"", "e", "engl", "EN", "en_", "en_a", "en_abcdefghi", "en__US", "ab_abcdefgh_ab", "abc_abcdefgh_ab", "en_US-", "é"},
	}
	paramPool    = text(0, 1024, "482913", "", "Ωmega")
	bodyPool     = text(1, 4096, "Invoice #42 is due tomorrow.", "hi", "line\nbreak \"quoted\" <b>&</b>")
	metaKeyPool  = text(1, 64, "request_id", "k", "ключ")
	metaValPool  = text(0, 512, "r-77", "", "значение")
	codePool     = text(1, 64, "http_503", "131026")
	messagePool  = text(0, 2048, "service unavailable", "")
	optional32   = text(0, 32, "", "xpressbot", "retry-5s")
	optional64   = text(0, 64, "", "acme", "otp")
	pmidPool     = text(1, 256, "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI")
	eventIDPool  = text(1, 128, "6f1c2a4e/accepted/1", "wh/wamid.x/delivered")
	attemptPool  = pool[int]{valid: []int{0, 1, 2, 3, 1000}, edge: []int{-1, 1001, -1 << 40, 1 << 40}}
	versionPool  = pool[int]{valid: []int{0, 1}, edge: []int{2, -1}}
	emitterPool  = pool[string]{valid: []string{EmitterDispatcher, EmitterWebhook, EmitterIngest, EmitterNotifyctl}, edge: []string{"", "Webhook", "sink"}}
	statusPool   = pool[Status]{edge: []Status{"", "bogus", "Accepted", "sent "}}
	presentOrNot = pool[bool]{valid: []bool{true, false}}
)

func init() {
	statusPool.valid = append(statusPool.valid, Statuses...)
}

var zones = []*time.Location{
	time.UTC, time.Local, time.FixedZone("", 0), time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -(23*3600 + 59*60)),
	time.FixedZone("z", 23*3600+59*60+59), time.FixedZone("s", 30), time.FixedZone("big", 24*3600), time.FixedZone("neg", -25*3600),
}

func genTime(r *rand.Rand) time.Time {
	var year int
	switch r.IntN(16) {
	case 0:
		year = []int{-1, 0, 1, 9999, 10000}[r.IntN(5)]
	default:
		year = 1970 + r.IntN(100)
	}
	t := time.Date(year, time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
	switch r.IntN(4) {
	case 0:
		t = t.Add(time.Duration(r.IntN(1e9)))
	case 1:
		t = t.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
	}
	if r.IntN(3) == 0 {
		t = t.In(zones[r.IntN(len(zones))])
	}
	return t
}

func genTimePtr(r *rand.Rand) *time.Time {
	if r.IntN(2) == 0 {
		return nil
	}
	t := genTime(r)
	return &t
}

// lanePool holds the lanes, absence, and values the enum refuses.
var lanePool = pool[string]{valid: []string{"", "", "critical", "transactional", "bulk"}, edge: []string{"urgent", "Critical", " bulk"}}

func genNotification(r *rand.Rand) *Notification {
	n := &Notification{
		SchemaVersion:  versionPool.draw(r),
		ID:             idPoolEdge.draw(r),
		IdempotencyKey: keyPool.draw(r),
		Tenant:         tenantPool.draw(r),
		SourceService:  servicePool.draw(r),
		EventType:      eventTypePool.draw(r),
		UserID:         userPool.draw(r),
		EventTime:      genTimePtr(r),
		Recipient:      recipientPool.draw(r),
		Sender:         senderPool.draw(r),
		Lane:           lanePool.draw(r),
		ExpiresAt:      genTimePtr(r),
		CreatedAt:      genTime(r),
	}
	// Mostly exactly one body; sometimes both or neither.
	switch k := r.IntN(10); {
	case k < 5:
		n.Template = genTemplate(r)
	case k < 9:
		n.Text = &Text{Body: bodyPool.draw(r), PreviewURL: presentOrNot.draw(r)}
	case k == 9 && r.IntN(2) == 0:
		n.Template = genTemplate(r)
		n.Text = &Text{Body: bodyPool.draw(r)}
	}
	switch r.IntN(6) {
	case 0:
		n.Metadata = map[string]string{}
	case 1, 2:
		n.Metadata = map[string]string{metaKeyPool.draw(r): metaValPool.draw(r)}
	case 3:
		n.Metadata = map[string]string{}
		for i := range []int{32, 33, 31}[r.IntN(3)] {
			n.Metadata[rep("k", 1+i)] = metaValPool.draw(r)
		}
	}
	return n
}

func genTemplate(r *rand.Rand) *Template {
	t := &Template{Name: templatePool.draw(r), Language: languagePool.draw(r)}
	switch r.IntN(5) {
	case 0:
	case 1:
		t.Parameters = []string{}
	case 2:
		for range []int{20, 21, 19}[r.IntN(3)] {
			t.Parameters = append(t.Parameters, "p")
		}
	default:
		for range 1 + r.IntN(3) {
			t.Parameters = append(t.Parameters, paramPool.draw(r))
		}
	}
	return t
}

func genStatusEvent(r *rand.Rand) *StatusEvent {
	e := &StatusEvent{
		SchemaVersion: versionPool.draw(r),
		EventID:       eventIDPool.draw(r),
		Provider:      optional32.draw(r),
		Tenant:        optional64.draw(r),
		EventType:     optional64.draw(r),
		Sender:        optional64.draw(r),
		Recipient:     recipientPool.draw(r),
		Status:        statusPool.draw(r),
		Attempt:       attemptPool.draw(r),
		RetryTier:     optional32.draw(r),
		DueAt:         genTimePtr(r),
		OccurredAt:    genTime(r),
		Emitter:       emitterPool.draw(r),
	}
	if r.IntN(4) != 0 {
		e.NotificationID = idPool.draw(r)
	}
	if r.IntN(3) != 0 {
		e.ProviderMessageID = pmidPool.draw(r)
	}
	if r.IntN(3) == 0 {
		e.Error = &ErrorInfo{Code: codePool.draw(r), Message: messagePool.draw(r), Retryable: presentOrNot.draw(r)}
	}
	switch r.IntN(4) {
	case 0:
		e.Route = RoutePrimary
	case 1:
		e.Route = RouteFailover
	case 2:
		e.Route = "backup" // not in the enum
	}
	return e
}
