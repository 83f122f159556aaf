package contract_test

import "github.com/twmb/franz-go/pkg/kgo"

func toHeaders(m map[string]string) []kgo.RecordHeader {
	hs := make([]kgo.RecordHeader, 0, len(m))
	for k, v := range m {
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return hs
}
