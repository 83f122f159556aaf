package phone

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// TestValidForCodeAgreesWithIsValidNumber: for numbers of every calling
// code, every length and every first digit (valid ones included: each
// region's example numbers), validForCode decides as IsValidNumber does.
func TestValidForCodeAgreesWithIsValidNumber(t *testing.T) {
	codes := phonenumbers.GetSupportedCallingCodes()
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		codes[cc] = true
	}
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(cc int, nsn string) bool {
		var nn uint64
		fmt.Sscan(nsn, &nn)
		num := &phonenumbers.PhoneNumber{CountryCode: proto.Int32(int32(cc)), NationalNumber: proto.Uint64(nn)}
		got, decided := validForCode(cc, nsn)
		if !decided {
			return false
		}
		if want := phonenumbers.IsValidNumber(num); got != want {
			t.Fatalf("+%d %s: validForCode %v, IsValidNumber %v", cc, nsn, got, want)
		}
		return got
	}
	valid, checked := 0, 0
	for cc := range codes {
		for _, region := range phonenumbers.GetRegionCodesForCountryCode(cc) {
			for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.TOLL_FREE, phonenumbers.VOIP} {
				var ex *phonenumbers.PhoneNumber
				if region == "001" {
					ex = phonenumbers.GetExampleNumberForNonGeoEntity(cc)
				} else {
					ex = phonenumbers.GetExampleNumberForType(region, typ)
				}
				if ex == nil || ex.GetItalianLeadingZero() {
					continue
				}
				checked++
				if check(cc, fmt.Sprint(ex.GetNationalNumber())) {
					valid++
				}
			}
		}
		for n := 4; n <= 15; n++ {
			for first := byte('1'); first <= '9'; first++ {
				digits := []byte{first}
				for len(digits) < n {
					digits = append(digits, byte('0'+rng.IntN(10)))
				}
				checked++
				if check(cc, string(digits)) {
					valid++
				}
			}
		}
	}
	t.Logf("%d numbers checked, %d valid", checked, valid)
	if valid < 500 {
		t.Fatalf("only %d valid numbers among %d", valid, checked)
	}
}
