package sdk

import (
	"fmt"
	"testing"

	"github.com/wanotify/wanotify/pkg/phone"
)

func TestRecipientCacheAnswersAsPhoneNormalize(t *testing.T) {
	c := newRecipientCache()
	inputs := []string{"+447700900123", "+44 7700 900123", "+1 212 555 0123", "07700900123", "+1", "", "+44abc",
		"+8613800138000", "+4477009001234567890123456789012345"}
	for round := 0; round < 2; round++ { // the second round is served from the cache
		for _, in := range inputs {
			want, wantErr := phone.Normalize(in)
			got, err := c.normalize(in)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Fatalf("round %d %q: cache %q, %v; phone.Normalize %q, %v", round, in, got, err, want, wantErr)
			}
		}
	}
}

func TestRecipientCacheStaysBounded(t *testing.T) {
	c := newRecipientCache()
	// 25% more distinct numbers than the cache holds: every shard fills up
	// and starts over at least once.
	for i := 0; i < recipientShards*recipientShardSize*5/4; i++ {
		if _, err := c.normalize(fmt.Sprintf("+447700%06d", i)); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := range c.shards {
		n := len(c.shards[i].m)
		if n > recipientShardSize {
			t.Fatalf("shard %d holds %d entries", i, n)
		}
		total += n
	}
	if total == 0 {
		t.Fatal("nothing cached")
	}
}
