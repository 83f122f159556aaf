package phone

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestRecipientCacheAnswersAsPhoneNormalize(t *testing.T) {
	inputs := []string{"+447700900123", "+447911123456", "+44 7911 123456", "+44 7700 900123", "+1 212 555 0123", "07700900123", "+1", "", "+44abc",
		"+8613800138000", "+4477009001234567890123456789012345", "+44 77OO 901118"}
	for _, rule := range []Rule{Valid, Possible} {
		c := newRecipientCache(rule, recipientShardSize)
		for round := 0; round < 2; round++ { // the second round is served from the cache
			for _, in := range inputs {
				want, wantErr := rule.Normalize(in)
				got, err := c.normalize(in)
				if got != want || (err == nil) != (wantErr == nil) {
					t.Fatalf("%v round %d %q: cache %q, %v; Normalize %q, %v", rule, round, in, got, err, want, wantErr)
				}
			}
		}
	}
}

func TestRecipientCacheStaysBounded(t *testing.T) {
	const perShard = 8
	c := newRecipientCache(Valid, perShard)
	// Twice as many distinct numbers as the cache holds: shards fill up
	// and start over.
	for i := 0; i < recipientShards*perShard*2; i++ {
		if _, err := c.normalize(fmt.Sprintf("+447911%06d", i)); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := range c.shards {
		n := len(c.shards[i].m)
		if n > perShard {
			t.Fatalf("shard %d holds %d entries", i, n)
		}
		total += n
	}
	if total == 0 {
		t.Fatal("nothing cached")
	}
}

// TestCanonicalE164AgreesWithPhoneNormalize sweeps every calling code with
// national numbers of every length, starting with every digit (so with
// and without the national prefix): wherever canonicalE164 decides, it
// decides as phone.Normalize (phonenumbers.Parse) does, under each rule.
func TestCanonicalE164AgreesWithPhoneNormalize(t *testing.T) {
	for _, rule := range []Rule{Valid, Possible} {
		t.Run(rule.String(), func(t *testing.T) { canonicalAgrees(t, rule) })
	}
}

func canonicalAgrees(t *testing.T, rule Rule) {
	codes := phonenumbers.GetSupportedCallingCodes()
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		codes[cc] = true
	}
	rng := rand.New(rand.NewPCG(1, 2))
	decided, checked := 0, 0
	for cc := range codes {
		for n := 1; n <= 16; n++ {
			for first := '0'; first <= '9'; first++ {
				digits := []byte{byte(first)}
				for len(digits) < n {
					digits = append(digits, byte('0'+rng.IntN(10)))
				}
				in := fmt.Sprintf("+%d%s", cc, digits)
				got, ok, gotErr := canonicalE164(in, rule)
				if !ok {
					continue
				}
				want, wantErr := rule.Normalize(in)
				checked++
				if (gotErr == nil) != (wantErr == nil) || got != want {
					t.Fatalf("%s: shortcut %q, %v; phonenumbers %q, %v", in, got, gotErr, want, wantErr)
				}
				if gotErr == nil {
					decided++
				}
			}
		}
	}
	t.Logf("%v: the shortcut accepted %d of %d numbers it decided", rule, decided, checked)
	// Random national numbers are possible far more often than valid.
	if least := map[Rule]int{Possible: 1000, Valid: 500}[rule]; decided < least {
		t.Fatalf("the shortcut accepted only %d of %d numbers it decided, want at least %d", decided, checked, least)
	}
	// The common shapes take the shortcut (countries whose prefix rule is a
	// pattern, such as China or Brazil, always take the full parse).
	for _, in := range []string{"+447700900123", "+14155550123", "+4915123456789", "+919876543210", "+390612345678", "+2348031234567"} {
		if _, ok, err := canonicalE164(in, Possible); !ok || err != nil {
			t.Errorf("%s: decided %v, err %v", in, ok, err)
		}
	}
	// Input only Parse can read is left to it.
	for _, in := range []string{"+44 7700 900123", "447700900123", "+4407700900123", "+44abc", "+0123456", "+1"} {
		if _, ok, _ := canonicalE164(in, rule); ok {
			t.Errorf("%s: decided by the shortcut", in)
		}
	}
}

// FuzzRecipient holds the normalisation to the recipient rule, for any
// input and either rule: the cached and shortcut answers are Normalize's;
// an accepted input held only digits, a leading "+" and separators; the
// number accepted is valid for its region (possible under Possible); and
// it is made of exactly the input's digits, none dropped, none made up.
func FuzzRecipient(f *testing.F) {
	for _, s := range []string{"+447700900123", "+447911123456", "+4407700900123", "+81000000000000", "+39 06 1234 5678", "+5491123456789",
		"+54 9 11 2345 6789", "+1 (212) 555-0123 ext. 7", "+8613800138000", "+80012345678", "+", "", "++1", " +447700900123\t",
		"+44 77OO 901118", "+44 (0)7911 123456", "+1-415-555-0123", "+1.415.555.0123", "+１４１５５５５０１２３"} {
		f.Add(s)
	}
	caches := []*recipientCache{newRecipientCache(Valid, recipientShardSize), newRecipientCache(Possible, recipientShardSize)}
	f.Fuzz(func(t *testing.T, in string) {
		for _, c := range caches {
			want, wantErr := c.rule.Normalize(in)
			for round := 0; round < 2; round++ {
				got, err := c.normalize(in)
				if (err == nil) != (wantErr == nil) || got != want {
					t.Fatalf("%v %q (round %d): %q, %v; Normalize %q, %v", c.rule, in, round, got, err, want, wantErr)
				}
			}
			if wantErr != nil {
				continue
			}
			digits := ""
			for i, r := range strings.TrimSpace(in) {
				switch {
				case r >= '0' && r <= '9':
					digits += string(r)
				case r == '+' && i == 0, strings.ContainsRune(" -.()", r):
				default:
					t.Fatalf("%v %q: accepted with %q in it", c.rule, in, r)
				}
			}
			if want != "+"+digits {
				t.Fatalf("%v %q: accepted as %q, not the input's digits %s", c.rule, in, want, digits)
			}
			num, err := phonenumbers.Parse(want, "")
			if err != nil {
				t.Fatalf("%v %q: accepted as %q, which does not parse: %v", c.rule, in, want, err)
			}
			if c.rule == Valid && !phonenumbers.IsValidNumber(num) || !phonenumbers.IsPossibleNumber(num) {
				t.Fatalf("%v %q: accepted as %q, which the rule refuses", c.rule, in, want)
			}
		}
	})
}

// BenchmarkNormalizeCached: the cost of a recipient by rule, for numbers
// seen before (the cache) and new ones (the E.164 shortcut, whose region
// check is the valid rule's extra cost).
func BenchmarkNormalizeCached(b *testing.B) {
	for _, rule := range []Rule{Valid, Possible} {
		for _, seen := range []bool{true, false} {
			name := rule.String() + "/new"
			if seen {
				name = rule.String() + "/seen"
			}
			b.Run(name, func(b *testing.B) {
				c := newRecipientCache(rule, recipientShardSize)
				i := 0
				for b.Loop() {
					n := i
					if seen {
						n = i % 1000
					} else if i%(recipientShards*recipientShardSize/2) == 0 {
						c = newRecipientCache(rule, recipientShardSize)
					}
					if _, err := c.normalize(fmt.Sprintf("+4471%08d", n)); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
