package phone

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// Parsing a number with phonenumbers costs about as much as everything
// else a publish does together (its extension and prefix rules are
// regular expressions), while the same recipients come back again and
// again (the user who asks for an OTP, the customer billed every month).
// So valid results are remembered in a bounded cache. phone.Normalize is a
// pure function of its input, so a cached answer is the answer.
const (
	recipientShards      = 64
	recipientShardSize   = 4096 // entries per shard (about 20 MB when all are full); a full shard starts over
	recipientMaxInputLen = 32   // longer inputs are not cached
)

type recipientShard struct {
	mu sync.RWMutex
	m  map[string]string
}

type recipientCache struct {
	rule     Rule
	seed     maphash.Seed
	perShard int
	shards   [recipientShards]recipientShard
}

// One cache per rule: a number possible but not valid is cached only for
// Possible.
var recipients = [...]*recipientCache{Valid: newRecipientCache(Valid, recipientShardSize), Possible: newRecipientCache(Possible, recipientShardSize)}

func newRecipientCache(rule Rule, perShard int) *recipientCache {
	c := &recipientCache{rule: rule, seed: maphash.MakeSeed(), perShard: perShard}
	for i := range c.shards {
		c.shards[i].m = make(map[string]string)
	}
	return c
}

// NormalizeCached is Valid.NormalizeCached.
func NormalizeCached(raw string) (string, error) { return Valid.NormalizeCached(raw) }

// NormalizeCached is Normalize behind a bounded cache and a shortcut for
// input already in canonical E.164 form: the same answers, for a fraction
// of the cost where recipients repeat (ingest's publishers, the webhook
// receiver's sent/delivered/read of one message).
func (r Rule) NormalizeCached(raw string) (string, error) {
	if int(r) >= len(recipients) {
		r = Valid
	}
	return recipients[r].normalize(raw)
}

// normalize is Normalize behind the cache and the canonical-input
// shortcut.
func (c *recipientCache) normalize(raw string) (string, error) {
	if len(raw) > recipientMaxInputLen {
		return c.rule.Normalize(raw)
	}
	s := &c.shards[maphash.String(c.seed, raw)%recipientShards]
	s.mu.RLock()
	e164, ok := s.m[raw]
	s.mu.RUnlock()
	if ok {
		return e164, nil
	}
	e164, decided, err := canonicalE164(raw, c.rule)
	if !decided {
		e164, err = c.rule.Normalize(raw)
	}
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		clear(s.m)
	}
	s.m[strings.Clone(raw)] = e164
	s.mu.Unlock()
	return e164, nil
}

// Most producers already send E.164 ("+" and digits). For such input,
// phonenumbers.Parse spends nearly all its time in the regular expressions
// that strip formatting, extensions and alternative prefixes, none of
// which can match. canonicalE164 takes the same steps Parse takes for
// that input with the library's own data (calling codes, national prefix
// rules, possible lengths) and decides without them, but only where the
// outcome is certain: when the region's national prefix for parsing is
// made of digit strings the number does not start with, Parse would not
// touch the number; every other case (prefix present, prefix rules that
// are patterns, unknown calling code, odd lengths) is left to Parse
// (decided = false). TestCanonicalE164AgreesWithPhoneNormalize and
// FuzzRecipient compare the two. Its digits are the input's by
// construction.
func canonicalE164(raw string, rule Rule) (e164 string, decided bool, err error) {
	s := strings.TrimSpace(raw)
	if len(s) < 4 || len(s) > 21 || s[0] != '+' || s[1] == '0' {
		return "", false, nil
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false, nil
		}
	}
	digits := s[1:]
	var (
		cc       int
		prefixes []string
		national string
	)
	for i := 1; i <= 3 && i < len(digits); i++ {
		n, _ := strconv.Atoi(digits[:i])
		if len(phonenumbers.GetRegionCodesForCountryCode(n)) == 0 {
			continue // not a calling code: Parse tries one digit more too
		}
		p, ok := nationalPrefixes()[n]
		if !ok || p.pattern {
			return "", false, nil
		}
		cc, prefixes, national = n, p.literals, digits[i:]
		break
	}
	if cc == 0 || len(national) < 2 || len(national) > 17 {
		return "", false, nil
	}
	for _, p := range prefixes {
		if strings.HasPrefix(national, p) {
			return "", false, nil // Parse may strip or rewrite it
		}
	}
	nn, err := strconv.ParseUint(national, 10, 64)
	if err != nil {
		return "", false, nil
	}
	num := &phonenumbers.PhoneNumber{CountryCode: proto.Int32(int32(cc)), NationalNumber: proto.Uint64(nn)}
	if national[0] == '0' {
		// Parse keeps leading zeros this way (Italy and others).
		num.ItalianLeadingZero = proto.Bool(true)
		zeros := 1
		for zeros < len(national)-1 && national[zeros] == '0' {
			zeros++
		}
		if zeros != 1 {
			num.NumberOfLeadingZeros = proto.Int32(int32(zeros))
		}
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return "", true, fmt.Errorf("%w: %s is not a possible number", ErrInvalid, Mask(s))
	}
	accepted := true
	if rule == Valid {
		var decided bool
		if accepted, decided = validForCode(cc, national); !decided {
			accepted = rule.accepts(num)
		}
	}
	if !accepted {
		return "", true, fmt.Errorf("%w: %s is not a valid number for its region", ErrInvalid, Mask(s))
	}
	// E.164 formatting of the number read from s gives s back: the calling
	// code, then the national number with the leading zeros kept above.
	return s, true, nil
}

type nationalPrefix struct {
	literals []string // Parse may strip a number's start only if it is one of these
	pattern  bool     // the rule is a pattern: only Parse can apply it
}

// nationalPrefixes maps each calling code to the national prefix rule of
// the metadata Parse uses for it (its main region's).
var nationalPrefixes = sync.OnceValue(func() map[int]nationalPrefix {
	out := map[int]nationalPrefix{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return out // every number takes the full parse
	}
	for _, m := range coll.GetMetadata() {
		cc := int(m.GetCountryCode())
		if main := phonenumbers.GetRegionCodeForCountryCode(cc); main != m.GetId() {
			continue
		}
		// The rule is a regular expression anchored at the number's start;
		// most are a digit string or alternatives of digit strings
		// ("0|180020"), which a prefix test decides exactly.
		var np nationalPrefix
		if p := m.GetNationalPrefixForParsing(); p != "" {
			for _, alt := range strings.Split(p, "|") {
				if alt == "" || strings.Trim(alt, "0123456789") != "" {
					np = nationalPrefix{pattern: true}
					break
				}
				np.literals = append(np.literals, alt)
			}
		}
		out[cc] = np
	}
	return out
})
