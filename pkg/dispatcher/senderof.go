package dispatcher

import "encoding/json"

// senderOf reads a notification's sender without decoding the rest ("" if
// the value is not a JSON object with a string sender).
func senderOf(value []byte) string {
	var v struct {
		Sender string `json:"sender"`
	}
	if json.Unmarshal(value, &v) != nil {
		return ""
	}
	return v.Sender
}
