package sdk

import (
	"hash/maphash"
	"strings"
	"sync"

	"github.com/wanotify/wanotify/pkg/phone"
)

// Parsing a number with phonenumbers costs about as much as everything
// else a publish does together (its extension and prefix rules are
// regular expressions), while the same recipients come back again and
// again (the user who asks for an OTP, the customer billed every month).
// So valid results are remembered in a bounded cache. phone.Normalize is a
// pure function of its input, so a cached answer is the answer.
const (
	recipientShards      = 64
	recipientShardSize   = 4096 // entries per shard; a full shard starts over
	recipientMaxInputLen = 32   // longer inputs are not cached
)

type recipientShard struct {
	mu sync.RWMutex
	m  map[string]string
}

type recipientCache struct {
	seed   maphash.Seed
	shards [recipientShards]recipientShard
}

var recipients = newRecipientCache()

func newRecipientCache() *recipientCache {
	c := &recipientCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]string)
	}
	return c
}

// normalize is phone.Normalize behind the cache.
func (c *recipientCache) normalize(raw string) (string, error) {
	if len(raw) > recipientMaxInputLen {
		return phone.Normalize(raw)
	}
	s := &c.shards[maphash.String(c.seed, raw)%recipientShards]
	s.mu.RLock()
	e164, ok := s.m[raw]
	s.mu.RUnlock()
	if ok {
		return e164, nil
	}
	e164, err := phone.Normalize(raw)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.m) >= recipientShardSize {
		clear(s.m)
	}
	s.m[strings.Clone(raw)] = e164
	s.mu.Unlock()
	return e164, nil
}
