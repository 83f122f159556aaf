package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/lanes"
	"github.com/wanotify/wanotify/schemas"
)

func TestFastPathIsPinnedToTheSchemas(t *testing.T) {
	for _, c := range []struct {
		name, pinned string
		on           bool
	}{
		{schemas.NotificationRequestedV1, notificationSchemaDigest, notificationFastPath},
		{schemas.NotificationStatusV1, statusSchemaDigest, statusFastPath},
	} {
		if got := schemaDigest(c.name); got != c.pinned || !c.on {
			t.Errorf("%s changed (sha256 %s, fast path written for %s), so its fast path is off and every "+
				"document goes through the schema validator. Review the members, required sets and typed checks "+
				"in fastpath.go against the new schema, then pin the new digest.", c.name, got, c.pinned)
		}
	}
}

func loadSchema(t testing.TB, name string) map[string]any {
	t.Helper()
	raw, err := schemas.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func schemaProps(t testing.TB, s map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	props, _ := s["properties"].(map[string]any)
	for k, v := range props {
		out[k] = v.(map[string]any)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

// jsonNames lists the JSON member names of a struct type.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func requiredSet(t testing.TB, s map[string]any, members []string) fieldSet {
	t.Helper()
	var f fieldSet
	req, _ := s["required"].([]any)
	for _, r := range req {
		i := slices.Index(members, r.(string))
		if i < 0 {
			t.Fatalf("required member %q is not among %v", r, members)
		}
		f |= 1 << i
	}
	return f
}

// The fast path's member lists and required sets are the schema's, and
// the Go types decode exactly those members.
func TestMembersAreTheSchemasAndTheStructs(t *testing.T) {
	type object struct {
		schema   map[string]any
		members  []string
		required fieldSet
		goType   reflect.Type
	}
	req := loadSchema(t, schemas.NotificationRequestedV1)
	st := loadSchema(t, schemas.NotificationStatusV1)
	reqProps, stProps := schemaProps(t, req), schemaProps(t, st)
	for name, o := range map[string]object{
		"notification": {req, notificationMembers, notificationRequired, reflect.TypeFor[Notification]()},
		"template":     {reqProps["template"], templateMembers, templateRequired, reflect.TypeFor[Template]()},
		"text":         {reqProps["text"], textMembers, textRequired, reflect.TypeFor[Text]()},
		"status event": {st, statusMembers, statusRequired, reflect.TypeFor[StatusEvent]()},
		"status error": {stProps["error"], errorMembers, errorRequired, reflect.TypeFor[ErrorInfo]()},
	} {
		if got, want := sorted(o.members), keys(schemaProps(t, o.schema)); !slices.Equal(got, want) {
			t.Errorf("%s: fast path members %v, schema properties %v", name, got, want)
		}
		if got, want := sorted(o.members), jsonNames(o.goType); !slices.Equal(got, want) {
			t.Errorf("%s: fast path members %v, %s decodes %v", name, got, o.goType, want)
		}
		if o.schema["additionalProperties"] != false {
			t.Errorf("%s: the schema allows other members; the fast path refuses them", name)
		}
		if want := requiredSet(t, o.schema, o.members); o.required != want {
			t.Errorf("%s: required set %b, schema %b", name, o.required, want)
		}
	}
	if len(notificationMembers) > 32 || len(statusMembers) > 32 {
		t.Fatal("a fieldSet holds 32 members")
	}
}

func TestValidExamplesTakeTheFastPath(t *testing.T) {
	for name, raw := range examples(t, "requested-") {
		if !strings.HasPrefix(name, "examples/valid/") {
			continue
		}
		if !agreeNotification(t, raw) {
			t.Errorf("%s: the fast path refused a valid example", name)
		}
		n, _ := DecodeNotification(raw)
		if !agreeEncodeNotification(t, n) {
			t.Errorf("%s: the typed checks refused its decoded value", name)
		}
	}
	for name, raw := range examples(t, "status-") {
		if !strings.HasPrefix(name, "examples/valid/") {
			continue
		}
		if !agreeStatusEvent(t, raw) {
			t.Errorf("%s: the fast path refused a valid example", name)
		}
		e, _ := DecodeStatusEvent(raw)
		if !agreeEncodeStatusEvent(t, e) {
			t.Errorf("%s: the typed checks refused its decoded value", name)
		}
	}
}

// fillers are strings of n code points: ASCII, two-byte characters, and
// shapes some patterns need.
func fillers(n int) []string {
	out := []string{strings.Repeat("a", n), strings.Repeat("é", n), strings.Repeat("1", n)}
	if n >= 2 {
		out = append(out, "+1"+strings.Repeat("2", n-2))
	}
	// language tags: "ab" then "_xx…" segments of 2 to 8 characters.
	if lang, ok := languageOfLength(n); ok {
		out = append(out, lang)
	}
	return out
}

func languageOfLength(n int) (string, bool) {
	if n < 2 {
		return "", false
	}
	s, r := "ab", n-2
	for r > 0 {
		seg := min(r, 9)
		if left := r - seg; left > 0 && left < 3 {
			seg = r - 3
		}
		if seg < 3 {
			return "", false
		}
		s += "_" + strings.Repeat("x", seg-1)
		r -= seg
	}
	return s, true
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// boundaryValues are JSON values at and around every limit the property
// schema ps sets, and values of other JSON types.
func boundaryValues(ps map[string]any) []any {
	wrongTypes := []any{json.Number("1"), true, nil, map[string]any{}, []any{}}
	var out []any
	if c, ok := ps["const"]; ok {
		n := num(c)
		out = append(out, json.Number(strconv.Itoa(n)), json.Number(strconv.Itoa(n+1)), json.Number(strconv.Itoa(n-1)),
			strconv.Itoa(n), json.Number(strconv.Itoa(n)+".5"))
		return append(out, wrongTypes...)
	}
	if e, ok := ps["enum"].([]any); ok {
		for _, v := range e {
			s := v.(string)
			out = append(out, s, strings.ToUpper(s), s+" ", s[:len(s)-1])
		}
		return append(out, wrongTypes...)
	}
	switch ps["type"] {
	case "string":
		lo, hasMax := num(ps["minLength"]), ps["maxLength"] != nil
		lengths := []int{lo - 1, lo, lo + 1}
		if hasMax {
			hi := num(ps["maxLength"])
			lengths = append(lengths, hi-1, hi, hi+1)
		}
		var re *regexp.Regexp
		if p, ok := ps["pattern"].(string); ok {
			re = regexp.MustCompile(p)
		}
		for _, n := range lengths {
			if n < 0 {
				continue
			}
			for _, s := range fillers(n) {
				if re == nil || re.MatchString(s) {
					out = append(out, s)
				}
			}
		}
		if ps["format"] == "date-time" {
			out = append(out, "2026-11-28T10:00:00Z", "2026-11-28T10:00:00.5+01:00", "2024-02-29T23:59:59-23:59",
				"2026-02-29T10:00:00Z", "2026-11-28T10:00:00", "tomorrow")
		}
		return append(out, wrongTypes[:1]...)
	case "integer":
		lo, hi := num(ps["minimum"]), num(ps["maximum"])
		for _, n := range []int{lo - 1, lo, lo + 1, hi - 1, hi, hi + 1} {
			out = append(out, json.Number(strconv.Itoa(n)))
		}
		return append(out, "1", json.Number("1.5"), true, nil)
	case "boolean":
		return append(out, true, false, "true", json.Number("0"), nil)
	case "array":
		items := ps["items"].(map[string]any)
		maxItems, maxLen := num(ps["maxItems"]), num(items["maxLength"])
		for _, n := range []int{0, 1, maxItems, maxItems + 1} {
			a := make([]any, n)
			for i := range a {
				a[i] = "p"
			}
			out = append(out, a)
		}
		for _, n := range []int{maxLen, maxLen + 1} {
			out = append(out, []any{strings.Repeat("a", n)}, []any{strings.Repeat("é", n)})
		}
		return append(out, []any{json.Number("1")}, []any{nil}, "p", nil)
	case "object":
		if ps["properties"] != nil {
			return append(out, map[string]any{}, map[string]any{"unknown": "x"}, "x", nil)
		}
		maxProps := num(ps["maxProperties"])
		names := ps["propertyNames"].(map[string]any)
		values := ps["additionalProperties"].(map[string]any)
		for _, n := range []int{0, 1, maxProps, maxProps + 1} {
			m := map[string]any{}
			for i := range n {
				m["k"+strconv.Itoa(i)] = "v"
			}
			out = append(out, m)
		}
		for _, n := range []int{num(names["minLength"]) - 1, num(names["minLength"]), num(names["maxLength"]), num(names["maxLength"]) + 1} {
			for _, k := range fillers(max(n, 0))[:2] {
				out = append(out, map[string]any{k: "v"})
			}
		}
		for _, n := range []int{num(values["maxLength"]), num(values["maxLength"]) + 1} {
			out = append(out, map[string]any{"k": strings.Repeat("a", n)}, map[string]any{"k": strings.Repeat("é", n)})
		}
		return append(out, map[string]any{"k": json.Number("1")}, map[string]any{"k": nil}, nil)
	}
	return nil
}

// The fast path implements every limit of the schemas exactly: at and
// around each of them, on every valid example, it accepts precisely what
// the schema accepts. The values come from the schema files, so a limit
// changed there and not in fastpath.go fails here.
func TestFastPathMatchesTheSchemaAtEveryLimit(t *testing.T) {
	type target struct {
		schema string
		bases  []string
		fast   func([]byte) bool
		agree  func(testing.TB, []byte) bool
	}
	for _, tg := range []target{
		{schemas.NotificationRequestedV1, notificationBases, func(b []byte) bool { _, ok := fastDecodeNotification(b); return ok }, agreeNotification},
		{schemas.NotificationStatusV1, statusBases, func(b []byte) bool { _, ok := fastDecodeStatusEvent(b); return ok }, agreeStatusEvent},
	} {
		root := loadSchema(t, tg.schema)
		// Every property, nested ones as "parent/name".
		props := map[string]map[string]any{}
		for name, ps := range schemaProps(t, root) {
			props[name] = ps
			if ps["properties"] != nil {
				for sub, sps := range schemaProps(t, ps) {
					props[name+"/"+sub] = sps
				}
				for _, r := range ps["required"].([]any) {
					props[name+"/"+r.(string)+"#required"] = nil
				}
			}
		}
		for _, r := range root["required"].([]any) {
			props[r.(string)+"#required"] = nil
		}
		covered := map[string]int{}
		check := func(what string, doc map[string]any) {
			t.Helper()
			raw := mustMarshal(t, doc)
			schemaOK := ValidateJSON(tg.schema, raw) == nil
			if fast := tg.fast(raw); fast != schemaOK {
				t.Errorf("%s: %s: fast path accepts=%v, schema accepts=%v\n%s", tg.schema, what, fast, schemaOK, raw)
			}
			tg.agree(t, raw)
		}
		for _, base := range tg.bases {
			doc := validExample(t, base)
			for _, path := range keys(props) {
				if p, ok := strings.CutSuffix(path, "#required"); ok {
					if d, ok := withMember(doc, p, nil, true); ok {
						check(base+" without "+p, d)
						covered[path]++
					}
					continue
				}
				for _, v := range boundaryValues(props[path]) {
					if d, ok := withMember(doc, path, v, false); ok {
						check(fmt.Sprintf("%s with %s = %.40q", base, path, mustMarshal(t, v)), d)
						covered[path]++
					}
				}
			}
			d, _ := withMember(doc, "unknown_member", "x", false)
			check(base+" with an unknown member", d)
		}
		for path := range props {
			if covered[path] == 0 {
				t.Errorf("%s: no case for %s", tg.schema, path)
			}
		}
	}
}

// Conditions between members: one body (template xor text) and the
// members each emitter must name.
func TestFastPathMatchesTheSchemaOnConditions(t *testing.T) {
	tmpl := validExample(t, "requested-template.json")
	text := validExample(t, "requested-text.json")
	both, _ := withMember(tmpl, "text", text["text"], false)
	neither, _ := withMember(tmpl, "template", nil, true)
	for name, doc := range map[string]map[string]any{"template": tmpl, "text": text, "both": both, "neither": neither} {
		raw := mustMarshal(t, doc)
		if fast, schemaOK := agreeNotification(t, raw), ValidateJSON(schemas.NotificationRequestedV1, raw) == nil; fast != schemaOK {
			t.Errorf("body %s: fast path accepts=%v, schema accepts=%v", name, fast, schemaOK)
		}
	}
	base := validExample(t, "status-accepted.json")
	for _, emitter := range []string{"dispatcher", "webhook", "ingest", "notifyctl", "sink"} {
		for _, withNID := range []bool{true, false} {
			for _, withPMID := range []bool{true, false} {
				doc, _ := withMember(base, "emitter", emitter, false)
				doc, _ = withMember(doc, "notification_id", nil, !withNID)
				if withNID {
					doc, _ = withMember(doc, "notification_id", "n1", false)
				}
				doc, _ = withMember(doc, "provider_message_id", nil, !withPMID)
				if withPMID {
					doc, _ = withMember(doc, "provider_message_id", "wamid.1", false)
				}
				raw := mustMarshal(t, doc)
				if fast, schemaOK := agreeStatusEvent(t, raw), ValidateJSON(schemas.NotificationStatusV1, raw) == nil; fast != schemaOK {
					t.Errorf("emitter %s notification_id %v provider_message_id %v: fast path accepts=%v, schema accepts=%v",
						emitter, withNID, withPMID, fast, schemaOK)
				}
			}
		}
	}
}

// Each pattern of the schemas has a hand-written matcher; they agree with
// the schema's own regular expression on random and structured strings.
func TestPatternsAgreeWithTheSchema(t *testing.T) {
	matchers := map[string]func(string) bool{
		schemas.NotificationRequestedV1 + "#notification_id":   notificationIDSyntax,
		schemas.NotificationRequestedV1 + "#tenant":            tenantSyntax,
		schemas.NotificationRequestedV1 + "#event_type":        eventTypeSyntax,
		schemas.NotificationRequestedV1 + "#recipient":         e164,
		schemas.NotificationRequestedV1 + "#template/name":     templateNameSyntax,
		schemas.NotificationRequestedV1 + "#template/language": languageSyntax,
		schemas.NotificationStatusV1 + "#recipient":            e164,
	}
	found := 0
	for _, name := range []string{schemas.NotificationRequestedV1, schemas.NotificationStatusV1} {
		for path, ps := range flatProps(t, loadSchema(t, name), "") {
			p, ok := ps["pattern"].(string)
			if !ok {
				continue
			}
			found++
			match, ok := matchers[name+"#"+path]
			if !ok {
				t.Errorf("%s: no matcher for the pattern of %s", name, path)
				continue
			}
			re := regexp.MustCompile(p)
			r := rand.New(rand.NewPCG(uint64(found), 7))
			const alphabet = "azAZ09_-.:+ é\xff"
			agreed, matched := 0, 0
			for i := range 30000 {
				var s string
				if i%2 == 0 {
					b := make([]byte, r.IntN(20))
					for j := range b {
						b[j] = alphabet[r.IntN(len(alphabet))]
					}
					s = string(b)
				} else {
					s = structured(r)
				}
				if match(s) != re.MatchString(s) {
					t.Errorf("%s %s: matcher says %v for %q, the schema's pattern %s says %v", name, path, match(s), s, p, !match(s))
					break
				}
				agreed++
				if match(s) {
					matched++
				}
			}
			if matched == 0 || matched == agreed {
				t.Errorf("%s %s: %d of %d strings matched; the test cannot tell the matcher from a constant", name, path, matched, agreed)
			}
		}
	}
	if found != len(matchers) {
		t.Errorf("%d patterns in the schemas, %d matchers", found, len(matchers))
	}
}

// structured builds strings shaped like the patterns: runs of one
// character class with separators, and phone numbers.
func structured(r *rand.Rand) string {
	classes := []string{"abcxyz", "ABCXYZ", "0123456789", "_-.:", "+"}
	if r.IntN(4) == 0 {
		return "+" + strconv.Itoa(r.IntN(10)) + strings.Repeat(strconv.Itoa(r.IntN(10)), r.IntN(17))
	}
	var sb strings.Builder
	for range r.IntN(5) + 1 {
		c := classes[r.IntN(len(classes))]
		if r.IntN(2) == 0 {
			sb.WriteByte("_-"[r.IntN(2)])
		}
		for range r.IntN(10) {
			sb.WriteByte(c[r.IntN(len(c))])
		}
	}
	return sb.String()
}

func flatProps(t testing.TB, s map[string]any, prefix string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, ps := range schemaProps(t, s) {
		out[prefix+name] = ps
		if ps["properties"] != nil {
			for k, v := range flatProps(t, ps, prefix+name+"/") {
				out[k] = v
			}
		}
	}
	return out
}

// The strict date-time form the fast path accepts is inside the schema's
// date-time format, and it is not empty.
func TestDateTimeIsInsideTheSchemaFormat(t *testing.T) {
	base := validExample(t, "status-accepted.json")
	accepted := 0
	try := func(s string) {
		t.Helper()
		if !dateTime([]byte(s)) {
			return
		}
		accepted++
		doc, _ := withMember(base, "occurred_at", s, false)
		if err := ValidateJSON(schemas.NotificationStatusV1, mustMarshal(t, doc)); err != nil {
			t.Errorf("dateTime accepts %q, the schema refuses it: %v", s, err)
		}
	}
	for _, s := range []string{
		"2026-11-28T10:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+23:59", "2024-02-29T00:00:00-00:00",
		"2000-02-29T12:00:00Z", "1900-02-29T12:00:00Z", "2026-02-29T12:00:00Z", "2026-04-31T12:00:00Z", "2026-11-28T10:00:60Z",
		"2026-11-28T24:00:00Z", "2026-11-28t10:00:00z", "2026-11-28T10:00:00.Z", "2026-11-28T10:00:00+24:00",
		"2026-11-28T10:00:00+01:60", "2026-11-28T10:00:00+0100", "2026-11-28 10:00:00Z", "2026-11-28T10:00:00",
	} {
		try(s)
	}
	r := rand.New(rand.NewPCG(3, 3))
	const chars = "0123456789-:T.Z+tz "
	for range 20000 {
		b := []byte("2026-11-28T10:00:00.5+01:00")
		if r.IntN(2) == 0 {
			b = []byte("2024-02-29T23:59:59Z")
		}
		for range r.IntN(3) {
			b[r.IntN(len(b))] = chars[r.IntN(len(chars))]
		}
		if r.IntN(4) == 0 {
			b = b[:len(b)-r.IntN(3)]
		}
		try(string(b))
	}
	if accepted < 1000 {
		t.Errorf("dateTime accepted only %d strings", accepted)
	}
}

// fieldNamed reports whether err is a *ValidationError with an entry for
// field.
func fieldNamed(err error, field string) bool {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	for _, f := range ve.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

type constraintCase struct {
	name  string
	base  string
	path  string // member to set, "" for none
	value any
	del   bool
	field string // the field the error must name
}

// Every constraint of the schemas, broken on its own: the fast path
// refuses, and the error names the same field as the schema path's.
func TestEachConstraintIsRefusedNamingTheField(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	meta := func(n int) map[string]any {
		m := map[string]any{}
		for i := range n {
			m["k"+strconv.Itoa(i)] = "v"
		}
		return m
	}
	params := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = "p"
		}
		return out
	}
	const tm, tx = "requested-template.json", "requested-text.json"
	const acc, retry, wh = "status-accepted.json", "status-retry.json", "status-webhook-delivered.json"
	notifications := []constraintCase{
		{"schema_version const", tm, "schema_version", json.Number("2"), false, "/schema_version"},
		{"schema_version required", tm, "schema_version", nil, true, "/schema_version"},
		{"notification_id pattern", tm, "notification_id", "a b", false, "/notification_id"},
		{"notification_id minLength", tm, "notification_id", "", false, "/notification_id"},
		{"notification_id maxLength", tm, "notification_id", long(65), false, "/notification_id"},
		{"notification_id required", tm, "notification_id", nil, true, "/notification_id"},
		{"idempotency_key minLength", tm, "idempotency_key", "", false, "/idempotency_key"},
		{"idempotency_key maxLength", tm, "idempotency_key", long(257), false, "/idempotency_key"},
		{"tenant pattern", tm, "tenant", "Acme", false, "/tenant"},
		{"tenant maxLength", tm, "tenant", long(65), false, "/tenant"},
		{"tenant required", tm, "tenant", nil, true, "/tenant"},
		{"source_service minLength", tm, "source_service", "", false, "/source_service"},
		{"source_service maxLength", tm, "source_service", long(129), false, "/source_service"},
		{"event_type pattern", tm, "event_type", ".otp", false, "/event_type"},
		{"event_type maxLength", tm, "event_type", long(65), false, "/event_type"},
		{"user_id maxLength", tm, "user_id", strings.Repeat("é", 129), false, "/user_id"},
		{"user_id type", tm, "user_id", nil, false, "/user_id"},
		{"event_time format", tm, "event_time", "tomorrow", false, "/event_time"},
		{"recipient pattern", tm, "recipient", "07700 900123", false, "/recipient"},
		{"recipient too short", tm, "recipient", "+123456", false, "/recipient"},
		{"recipient too long", tm, "recipient", "+1234567890123456", false, "/recipient"},
		{"sender minLength", tm, "sender", "", false, "/sender"},
		{"sender maxLength", tm, "sender", long(65), false, "/sender"},
		{"lane enum", tm, "lane", "urgent", false, "/lane"},
		{"lane enum, empty", tm, "lane", "", false, "/lane"},
		{"lane enum, spaces", tm, "lane", " critical", false, "/lane"},
		{"lane enum, case", tm, "lane", "Critical", false, "/lane"},
		{"lane type", tm, "lane", json.Number("1"), false, "/lane"},
		{"lane null", tm, "lane", nil, false, "/lane"},
		{"template/name pattern", tm, "template/name", "OTP", false, "/template/name"},
		{"template/name maxLength", tm, "template/name", long(513), false, "/template/name"},
		{"template/name required", tm, "template/name", nil, true, "/template/name"},
		{"template/language pattern", tm, "template/language", "english", false, "/template/language"},
		{"template/language minLength", tm, "template/language", "e", false, "/template/language"},
		{"template/language required", tm, "template/language", nil, true, "/template/language"},
		{"template/parameters maxItems", tm, "template/parameters", params(21), false, "/template/parameters"},
		{"template/parameters items maxLength", tm, "template/parameters", []any{long(1025)}, false, "/template/parameters/0"},
		{"template/parameters items type", tm, "template/parameters", []any{json.Number("1")}, false, "/template/parameters/0"},
		{"template additionalProperties", tm, "template/colour", "red", false, "/template"},
		{"template type", tm, "template", nil, false, "/template"},
		{"text/body minLength", tx, "text/body", "", false, "/text/body"},
		{"text/body maxLength", tx, "text/body", long(4097), false, "/text/body"},
		{"text/body required", tx, "text/body", nil, true, "/text/body"},
		{"text/preview_url type", tx, "text/preview_url", "yes", false, "/text/preview_url"},
		{"expires_at format", tm, "expires_at", "2026-02-30T10:00:00Z", false, "/expires_at"},
		{"created_at format", tm, "created_at", "2026-11-28T10:00:00", false, "/created_at"},
		{"created_at required", tm, "created_at", nil, true, "/created_at"},
		{"metadata maxProperties", tm, "metadata", meta(33), false, "/metadata"},
		// The schema path names no field for a bad member name, only the reason.
		{"metadata propertyNames minLength", tm, "metadata", map[string]any{"": "v"}, false, ""},
		{"metadata propertyNames maxLength", tm, "metadata", map[string]any{long(65): "v"}, false, ""},
		{"metadata values maxLength", tm, "metadata", map[string]any{"k": long(513)}, false, "/metadata/k"},
		{"metadata values type", tm, "metadata", map[string]any{"k": nil}, false, "/metadata/k"},
		{"oneOf both bodies", tm, "text", map[string]any{"body": "hi"}, false, ""},
		{"oneOf no body", tm, "template", nil, true, "/text"},
		{"additionalProperties", tm, "colour", "red", false, ""},
		{"additionalProperties, other case", tm, "Tenant", "acme", false, ""},
	}
	statuses := []constraintCase{
		{"schema_version const", acc, "schema_version", json.Number("0"), false, "/schema_version"},
		{"event_id minLength", acc, "event_id", "", false, "/event_id"},
		{"event_id maxLength", acc, "event_id", long(129), false, "/event_id"},
		{"event_id required", acc, "event_id", nil, true, "/event_id"},
		{"notification_id minLength", acc, "notification_id", "", false, "/notification_id"},
		{"notification_id maxLength", acc, "notification_id", long(65), false, "/notification_id"},
		{"provider_message_id minLength", acc, "provider_message_id", "", false, "/provider_message_id"},
		{"provider_message_id maxLength", acc, "provider_message_id", long(257), false, "/provider_message_id"},
		{"provider maxLength", acc, "provider", long(33), false, "/provider"},
		{"tenant maxLength", acc, "tenant", long(65), false, "/tenant"},
		{"event_type maxLength", acc, "event_type", long(65), false, "/event_type"},
		{"sender maxLength", acc, "sender", long(65), false, "/sender"},
		{"recipient pattern", acc, "recipient", "+0447700900123", false, "/recipient"},
		{"recipient required", acc, "recipient", nil, true, "/recipient"},
		{"status enum", acc, "status", "teleported", false, "/status"},
		{"status required", acc, "status", nil, true, "/status"},
		{"attempt minimum", acc, "attempt", json.Number("-1"), false, "/attempt"},
		{"attempt maximum", acc, "attempt", json.Number("1001"), false, "/attempt"},
		{"attempt type", acc, "attempt", json.Number("1.5"), false, "/attempt"},
		{"retry_tier maxLength", retry, "retry_tier", long(33), false, "/retry_tier"},
		{"route enum", acc, "route", "backup", false, "/route"},
		{"route type", acc, "route", json.Number("1"), false, "/route"},
		{"due_at format", retry, "due_at", "soon", false, "/due_at"},
		{"error/code required", retry, "error/code", nil, true, "/error/code"},
		{"error/code minLength", retry, "error/code", "", false, "/error/code"},
		{"error/code maxLength", retry, "error/code", long(65), false, "/error/code"},
		{"error/message maxLength", retry, "error/message", long(2049), false, "/error/message"},
		{"error/retryable required", retry, "error/retryable", nil, true, "/error/retryable"},
		{"error/retryable type", retry, "error/retryable", "yes", false, "/error/retryable"},
		{"error additionalProperties", retry, "error/detail", "x", false, "/error"},
		{"error type", retry, "error", nil, false, "/error"},
		{"occurred_at format", acc, "occurred_at", "2026-11-28T10:00:00+24:00", false, "/occurred_at"},
		{"occurred_at required", acc, "occurred_at", nil, true, "/occurred_at"},
		{"emitter enum", acc, "emitter", "sink", false, "/emitter"},
		{"emitter required", acc, "emitter", nil, true, "/emitter"},
		{"dispatcher needs notification_id", acc, "notification_id", nil, true, "/notification_id"},
		{"webhook needs provider_message_id", wh, "provider_message_id", nil, true, "/provider_message_id"},
		{"additionalProperties", wh, "colour", "red", false, ""},
	}
	run := func(t *testing.T, c constraintCase, decode func([]byte) error, fast func([]byte) bool, agree func(testing.TB, []byte) bool) {
		doc, ok := withMember(validExample(t, c.base), c.path, c.value, c.del)
		if !ok {
			t.Fatalf("%s has no parent for %s", c.base, c.path)
		}
		raw := mustMarshal(t, doc)
		agree(t, raw) // same error text as the schema path
		if fast(raw) {
			t.Fatalf("fast path accepted %s", raw)
		}
		if err := decode(raw); !fieldNamed(err, c.field) {
			t.Fatalf("error %v does not name %q\n%s", err, c.field, raw)
		}
	}
	for _, c := range notifications {
		t.Run("notification/"+c.name, func(t *testing.T) {
			run(t, c, func(b []byte) error { _, err := DecodeNotification(b); return err },
				func(b []byte) bool { _, ok := fastDecodeNotification(b); return ok }, agreeNotification)
		})
	}
	for _, c := range statuses {
		t.Run("status/"+c.name, func(t *testing.T) {
			run(t, c, func(b []byte) error { _, err := DecodeStatusEvent(b); return err },
				func(b []byte) bool { _, ok := fastDecodeStatusEvent(b); return ok }, agreeStatusEvent)
		})
	}
}

// Encode refuses a broken value with the schema path's error.
func TestEncodeRefusesNamingTheField(t *testing.T) {
	base, err := DecodeNotification(mustMarshal(t, validExample(t, "requested-template.json")))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mutate func(n *Notification)
		field  string
	}{
		"schema_version":    {func(n *Notification) { n.SchemaVersion = 2 }, "/schema_version"},
		"notification_id":   {func(n *Notification) { n.ID = "" }, "/notification_id"},
		"tenant":            {func(n *Notification) { n.Tenant = "Acme" }, "/tenant"},
		"recipient":         {func(n *Notification) { n.Recipient = "+44 7700" }, "/recipient"},
		"user_id":           {func(n *Notification) { n.UserID = strings.Repeat("\xff", 129) }, "/user_id"},
		"template/language": {func(n *Notification) { n.Template = &Template{Name: "otp", Language: "EN"} }, "/template/language"},
		"both bodies":       {func(n *Notification) { n.Text = &Text{Body: "hi"} }, ""},
		"no body":           {func(n *Notification) { n.Template = nil }, "/template"},
		"text/body":         {func(n *Notification) { n.Template, n.Text = nil, &Text{} }, "/text/body"},
		"metadata key":      {func(n *Notification) { n.Metadata = map[string]string{"": "v"} }, ""},
		"lane":              {func(n *Notification) { n.Lane = "urgent" }, "/lane"},
	}
	for name, c := range cases {
		t.Run("notification/"+name, func(t *testing.T) {
			n := *base
			c.mutate(&n)
			if agreeEncodeNotification(t, &n) {
				t.Fatal("typed checks accepted it")
			}
			if _, err := n.Encode(); !fieldNamed(err, c.field) {
				t.Fatalf("error %v does not name %q", err, c.field)
			}
		})
	}
	ev, err := DecodeStatusEvent(mustMarshal(t, validExample(t, "status-retry.json")))
	if err != nil {
		t.Fatal(err)
	}
	statusCases := map[string]struct {
		mutate func(e *StatusEvent)
		field  string
	}{
		"attempt":         {func(e *StatusEvent) { e.Attempt = -1 }, "/attempt"},
		"status":          {func(e *StatusEvent) { e.Status = "bogus" }, "/status"},
		"emitter":         {func(e *StatusEvent) { e.Emitter = "" }, "/emitter"},
		"notification_id": {func(e *StatusEvent) { e.NotificationID = "" }, "/notification_id"},
		"error/code":      {func(e *StatusEvent) { e.Error = &ErrorInfo{} }, "/error/code"},
		"provider_message_id": {func(e *StatusEvent) {
			e.Emitter, e.ProviderMessageID = EmitterWebhook, ""
		}, "/provider_message_id"},
	}
	for name, c := range statusCases {
		t.Run("status/"+name, func(t *testing.T) {
			e := *ev
			c.mutate(&e)
			if agreeEncodeStatusEvent(t, &e) {
				t.Fatal("typed checks accepted it")
			}
			if _, err := e.Encode(); !fieldNamed(err, c.field) {
				t.Fatalf("error %v does not name %q", err, c.field)
			}
		})
	}
	// A time stamp RFC 3339 cannot hold fails in encoding/json, as before.
	n := *base
	n.CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	agreeEncodeNotification(t, &n)
	if _, err := n.Encode(); err == nil {
		t.Fatal("encoded year 10000")
	}
}

// Property: over many generated values, Encode and the schema path give
// the same bytes or the same error, the typed checks never pass a value
// whose encoding the schema refuses, and the encodings decode alike on
// both paths. Both outcomes must come up often, or the test proves
// nothing.
func TestEncodeAgreesWithTheSchemaOnGeneratedValues(t *testing.T) {
	const n = 3000
	var okN, okS int
	for i := range uint64(n) {
		r := rand.New(rand.NewPCG(i, 99))
		v := genNotification(r)
		if agreeEncodeNotification(t, v) {
			okN++
		}
		if raw, err := json.Marshal(v); err == nil {
			agreeNotification(t, raw)
		}
		e := genStatusEvent(r)
		if agreeEncodeStatusEvent(t, e) {
			okS++
		}
		if raw, err := json.Marshal(e); err == nil {
			agreeStatusEvent(t, raw)
		}
	}
	for what, ok := range map[string]int{"notifications": okN, "status events": okS} {
		if ok < n/10 || ok > n*9/10 {
			t.Errorf("%s: %d of %d generated values valid; the generator must give both kinds", what, ok, n)
		}
	}
}

// encoding/json merges an object member that appears twice; the schema
// judges only the last one. Such a document is refused, naming the
// member, on the fast path and the schema path alike: what reaches the
// provider is never a merge the producer did not write.
func TestRepeatedMembersAreRefused(t *testing.T) {
	open := func(name string) string {
		raw, err := schemas.FS.ReadFile("examples/valid/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(strings.TrimSpace(string(raw)), "}")
	}
	tm, retry := open("requested-template.json"), open("status-retry.json")
	for _, c := range []struct {
		doc, field string
		status     bool
	}{
		{tm + `,"metadata":{"":"x"},"metadata":{}}`, "/metadata", false},
		{tm + `,"template":{"name":"otp","language":"en","parameters":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]},"template":{"name":"otp","language":"en"}}`, "/template", false},
		{retry + `,"error":{"code":"x","message":"` + strings.Repeat("m", 2049) + `","retryable":true},"error":{"code":"x","retryable":true}}`, "/error", true},
		{tm + `,"metadata":{"a":"1"},"metadata":{"b":"2"}}`, "/metadata", false},
		{strings.Replace(tm, `"request_id":"r-77"`, `"a":"1","a":"2"`, 1) + `}`, "/metadata/a", false},
	} {
		var err error
		if c.status {
			agreeStatusEvent(t, []byte(c.doc))
			_, err = DecodeStatusEvent([]byte(c.doc))
		} else {
			agreeNotification(t, []byte(c.doc))
			_, err = DecodeNotification([]byte(c.doc))
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(errText(err), "more than once") || !fieldNamed(err, c.field) {
			t.Errorf("%s: err = %v, want a refusal naming the repeated member %s", c.doc, err, c.field)
		}
	}
}

// A notification record whose text could not reach WhatsApp as written
// is refused naming the field, on both paths: the dispatcher treats it as
// poison, with this reason.
func TestNotificationTextMustBeText(t *testing.T) {
	raw, err := schemas.FS.ReadFile("examples/valid/requested-template.json")
	if err != nil {
		t.Fatal(err)
	}
	good := string(raw)
	if !strings.Contains(good, `"parameters": ["482913"]`) && !strings.Contains(good, `"parameters":["482913"]`) {
		t.Fatalf("the example changed: %s", good)
	}
	for _, c := range []struct{ param, field string }{
		{`"a\u0000b"`, "/template/parameters/1"},
		{`"a\rb"`, "/template/parameters/1"},
		{`"a\u007fb"`, "/template/parameters/1"},
		{`"a\u0085b"`, "/template/parameters/1"},
		{"\"a\xffb\"", "/template/parameters/1"},
		{`"\ud800"`, "/template/parameters/1"},
	} {
		doc := strings.Replace(strings.Replace(good, `"parameters": ["482913"]`, `"parameters": ["482913", `+c.param+`]`, 1), `"parameters":["482913"]`, `"parameters":["482913",`+c.param+`]`, 1)
		agreeNotification(t, []byte(doc))
		_, err := DecodeNotification([]byte(doc))
		if !errors.Is(err, ErrInvalid) || !fieldNamed(err, c.field) {
			t.Errorf("%s: err = %v, want a refusal naming %s", c.param, err, c.field)
		}
	}
	for _, ok := range []string{`"line 1\nline 2\tend"`, `"é ☃ 😀"`, `"\ud83d\ude00"`} {
		doc := strings.Replace(strings.Replace(good, `"parameters": ["482913"]`, `"parameters": ["482913", `+ok+`]`, 1), `"parameters":["482913"]`, `"parameters":["482913",`+ok+`]`, 1)
		if _, err := DecodeNotification([]byte(doc)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// The fast path's lane enum is package lanes' list of lanes, exactly.
func TestLaneEnumIsTheLanes(t *testing.T) {
	for _, l := range lanes.All {
		if !laneEnum(string(l)) {
			t.Errorf("lane %q is refused by the fast path", l)
		}
	}
	for _, s := range []string{"", "urgent", "Critical", " bulk", "bulk "} {
		if laneEnum(s) {
			t.Errorf("%q is accepted as a lane", s)
		}
	}
	if len(lanes.All) != 3 {
		t.Errorf("lanes.All has %d lanes; laneEnum and the schema's enum know 3", len(lanes.All))
	}
}
