package phone

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestRecipientCacheAnswersAsPhoneNormalize(t *testing.T) {
	c := newRecipientCache(recipientShardSize)
	inputs := []string{"+447700900123", "+44 7700 900123", "+1 212 555 0123", "07700900123", "+1", "", "+44abc",
		"+8613800138000", "+4477009001234567890123456789012345"}
	for round := 0; round < 2; round++ { // the second round is served from the cache
		for _, in := range inputs {
			want, wantErr := Normalize(in)
			got, err := c.normalize(in)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Fatalf("round %d %q: cache %q, %v; phone.Normalize %q, %v", round, in, got, err, want, wantErr)
			}
		}
	}
}

func TestRecipientCacheStaysBounded(t *testing.T) {
	const perShard = 8
	c := newRecipientCache(perShard)
	// Twice as many distinct numbers as the cache holds: shards fill up
	// and start over.
	for i := 0; i < recipientShards*perShard*2; i++ {
		if _, err := c.normalize(fmt.Sprintf("+447700%06d", i)); err != nil {
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
// decides as phone.Normalize (phonenumbers.Parse) does.
func TestCanonicalE164AgreesWithPhoneNormalize(t *testing.T) {
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
				got, ok, gotErr := canonicalE164(in)
				if !ok {
					continue
				}
				want, wantErr := Normalize(in)
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
	if decided < 1000 {
		t.Fatalf("the shortcut accepted only %d of %d numbers it decided", decided, checked)
	}
	// The common shapes take the shortcut (countries whose prefix rule is a
	// pattern, such as China or Brazil, always take the full parse).
	for _, in := range []string{"+447700900123", "+14155550123", "+4915123456789", "+919876543210", "+390612345678", "+2348031234567"} {
		if _, ok, err := canonicalE164(in); !ok || err != nil {
			t.Errorf("%s: decided %v, err %v", in, ok, err)
		}
	}
	// Input only Parse can read is left to it.
	for _, in := range []string{"+44 7700 900123", "447700900123", "+4407700900123", "+44abc", "+0123456", "+1"} {
		if _, ok, _ := canonicalE164(in); ok {
			t.Errorf("%s: decided by the shortcut", in)
		}
	}
}

// FuzzRecipient: for any input, the cached and shortcut normalisation
// answers as phone.Normalize does.
func FuzzRecipient(f *testing.F) {
	for _, s := range []string{"+447700900123", "+4407700900123", "+81000000000000", "+39 06 1234 5678", "+5491123456789",
		"+54 9 11 2345 6789", "+1 (212) 555-0123 ext. 7", "+8613800138000", "+80012345678", "+", "", "++1", " +447700900123\t"} {
		f.Add(s)
	}
	c := newRecipientCache(recipientShardSize)
	f.Fuzz(func(t *testing.T, in string) {
		want, wantErr := Normalize(in)
		for round := 0; round < 2; round++ {
			got, err := c.normalize(in)
			if (err == nil) != (wantErr == nil) || got != want {
				t.Fatalf("%q (round %d): %q, %v; phone.Normalize %q, %v", in, round, got, err, want, wantErr)
			}
		}
	})
}
