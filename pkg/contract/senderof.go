package contract

import "encoding/json"

// SenderOf reads a notification's sender from its encoded value without
// decoding the rest ("" if the value is not a JSON object with a string
// sender).
func SenderOf(value []byte) string {
	var v struct {
		Sender string `json:"sender"`
	}
	if json.Unmarshal(value, &v) != nil {
		return ""
	}
	return v.Sender
}
