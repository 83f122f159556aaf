package payload

import (
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/wanotify/wanotify/pkg/phone"
)

// Parsing a number with phone.Normalize (libphonenumber's full parse,
// whose extension and prefix rules are regular expressions) costs about
// as much as the rest of a status together, while every message brings
// the same recipient back several times (sent, delivered, read). So the
// numbers normalized recently are remembered in a bounded LRU cache.
// phone.Normalize is a pure function of its input, so a remembered answer
// is the answer. Numbers it refuses are not remembered.
const (
	recipientCacheSize   = 65536 // entries (a few MB when full)
	recipientMaxInputLen = 32    // longer inputs are not remembered
)

type recipientCache struct {
	c *lru.Cache[string, string]
}

var recipients = newRecipientCache(recipientCacheSize)

func newRecipientCache(size int) *recipientCache {
	c, err := lru.New[string, string](size)
	if err != nil {
		panic(err) // only for a size below 1, which no caller passes
	}
	return &recipientCache{c: c}
}

// normalize turns a status's recipient_id (Meta writes it without the
// "+"; a provider may add it) into E.164: phone.Normalize of the number
// with one "+" in front, behind the cache.
func (c *recipientCache) normalize(s string) (string, error) {
	if len(s) > recipientMaxInputLen {
		return normalizeRecipientID(s)
	}
	if e164, ok := c.c.Get(s); ok {
		return e164, nil
	}
	e164, err := normalizeRecipientID(s)
	if err != nil {
		return "", err
	}
	c.c.Add(strings.Clone(s), e164)
	return e164, nil
}

func normalizeRecipientID(s string) (string, error) {
	return phone.Normalize("+" + strings.TrimPrefix(s, "+"))
}
