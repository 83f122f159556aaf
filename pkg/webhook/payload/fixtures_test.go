package payload

import (
	"encoding/json"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/metawebhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// metaStatus is a well-formed status as Meta sends it.
func metaStatus(id, status, recipient string, ts int64) metawebhook.Status {
	return metawebhook.Status{ID: id, Status: status, RecipientID: recipient, Timestamp: strconv.FormatInt(ts, 10)}
}

// metaPayload wraps statuses in one entry/change, as Meta does.
func metaPayload(statuses ...metawebhook.Status) metawebhook.Payload {
	return metawebhook.Payload{
		Object: "whatsapp_business_account",
		Entry: []metawebhook.Entry{{ID: "waba-1", Changes: []metawebhook.Change{{
			Field: "messages",
			Value: metawebhook.Value{MessagingProduct: "whatsapp",
				Metadata: metawebhook.Metadata{DisplayPhoneNumber: "15550000001", PhoneNumberID: "pn-1"},
				Statuses: statuses},
		}}}},
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
