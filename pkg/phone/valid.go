package phone

import (
	"regexp"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// libphonenumber's IsValidNumber first finds the number's region (for a
// calling code shared by several, by their leading digits or by trying
// each region's number types in turn), then tries its number types; each
// try builds its regular expression's source anew, looks it up under a
// lock and matches it twice. For a number the cache has not seen that
// was five times the cost of the rest of a publish. validForCode takes
// the same steps over the library's own metadata with the expressions
// compiled once. TestCanonicalE164AgreesWithPhoneNormalize (every calling
// code) and FuzzRecipient hold it to IsValidNumber.

type descRule struct {
	lengths []int32
	re      *regexp.Regexp
}

func (d descRule) match(nsn string) bool {
	if len(d.lengths) > 0 {
		found := false
		for _, l := range d.lengths {
			if int32(len(nsn)) == l {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return d.re.MatchString(nsn)
}

type regionRule struct {
	leading *regexp.Regexp // nil: the region has no leading digits
	general descRule
	types   []descRule
}

// valid is the library's getNumberTypeHelper(nsn) != UNKNOWN.
func (r *regionRule) valid(nsn string) bool {
	if !r.general.match(nsn) {
		return false
	}
	for _, t := range r.types {
		if t.match(nsn) {
			return true
		}
	}
	return false
}

// codeRules are the regions of one calling code in the library's order
// (nil: a region without metadata), compiled on first use: most
// deployments see a handful of calling codes, and compiling them all
// would cost a noticeable fraction of a second.
type codeRules struct {
	once  sync.Once
	metas []*phonenumbers.PhoneMetadata
	rules []*regionRule
	ok    bool // false: the metadata did not compile; the library decides
}

func (c *codeRules) get() ([]*regionRule, bool) {
	c.once.Do(func() {
		compile := func(d *phonenumbers.PhoneNumberDesc) (descRule, bool) {
			re, err := regexp.Compile("^(?:" + d.GetNationalNumberPattern() + ")$")
			return descRule{lengths: d.GetPossibleLength(), re: re}, err == nil
		}
		var rules []*regionRule
		for _, m := range c.metas {
			if m == nil {
				rules = append(rules, nil)
				continue
			}
			r := &regionRule{}
			var ok bool
			if r.general, ok = compile(m.GetGeneralDesc()); !ok {
				return
			}
			if ld := m.GetLeadingDigits(); ld != "" {
				re, err := regexp.Compile("^(?:" + ld + ")")
				if err != nil {
					return
				}
				r.leading = re
			}
			types := []*phonenumbers.PhoneNumberDesc{m.GetPremiumRate(), m.GetTollFree(), m.GetSharedCost(), m.GetVoip(),
				m.GetPersonalNumber(), m.GetPager(), m.GetUan(), m.GetVoicemail(), m.GetFixedLine()}
			if !m.GetSameMobileAndFixedLinePattern() {
				types = append(types, m.GetMobile())
			}
			for _, d := range types {
				if d == nil {
					continue // matches no number
				}
				t, ok := compile(d)
				if !ok {
					return
				}
				r.types = append(r.types, t)
			}
			rules = append(rules, r)
		}
		c.rules, c.ok = rules, true
	})
	return c.rules, c.ok
}

// validRules maps every calling code to its regions' metadata.
var validRules = sync.OnceValue(func() map[int]*codeRules {
	out := map[int]*codeRules{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return out
	}
	type key struct {
		cc int
		id string
	}
	byRegion := map[key]*phonenumbers.PhoneMetadata{}
	for _, m := range coll.GetMetadata() {
		byRegion[key{int(m.GetCountryCode()), m.GetId()}] = m
	}
	codes := phonenumbers.GetSupportedCallingCodes()
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		codes[cc] = true
	}
	for cc := range codes {
		c := &codeRules{}
		for _, region := range phonenumbers.GetRegionCodesForCountryCode(cc) {
			c.metas = append(c.metas, byRegion[key{cc, region}])
		}
		out[cc] = c
	}
	return out
})

// validForCode is IsValidNumber for the number of calling code cc whose
// national significant number is nsn; decided is false where the library
// must decide itself.
func validForCode(cc int, nsn string) (valid, decided bool) {
	c, ok := validRules()[cc]
	if !ok {
		return false, false
	}
	rules, ok := c.get()
	if !ok {
		return false, false
	}
	switch len(rules) {
	case 0:
		return false, true
	case 1:
		return rules[0] != nil && rules[0].valid(nsn), true
	}
	// The region is the first whose leading digits start nsn, or, for a
	// region without leading digits, whose number types take it.
	for _, r := range rules {
		if r == nil {
			continue
		}
		if r.leading != nil {
			if r.leading.MatchString(nsn) {
				return r.valid(nsn), true
			}
		} else if r.valid(nsn) {
			return true, true
		}
	}
	return false, true
}
