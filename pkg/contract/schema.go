package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/wanotify/wanotify/pkg/internal/strictjson"
	"github.com/wanotify/wanotify/schemas"
)

// FieldError is one reason a document failed its schema. Field is a JSON
// pointer into the document ("/recipient", "/template/name"); an empty
// Field means the document as a whole.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e FieldError) String() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// ValidationError reports every field of a document that broke its schema.
type ValidationError struct {
	Schema string
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return fmt.Sprintf("invalid %s: %s", e.Schema, strings.Join(parts, "; "))
}

// ErrInvalid is matched (errors.Is) by every *ValidationError and by
// documents that are not JSON at all.
var ErrInvalid = errors.New("invalid document")

// Is makes errors.Is(err, ErrInvalid) true for validation errors.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
	printer     = message.NewPrinter(language.English)
)

func schemaFor(name string) (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		compiled = map[string]*jsonschema.Schema{}
		for _, n := range []string{schemas.NotificationRequestedV1, schemas.NotificationStatusV1, schemas.FailureHeadersV1} {
			raw, err := schemas.FS.ReadFile(n)
			if err != nil {
				compileErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				compileErr = fmt.Errorf("schema %s: %w", n, err)
				return
			}
			if err := c.AddResource(n, doc); err != nil {
				compileErr = fmt.Errorf("schema %s: %w", n, err)
				return
			}
		}
		for _, n := range []string{schemas.NotificationRequestedV1, schemas.NotificationStatusV1, schemas.FailureHeadersV1} {
			s, err := c.Compile(n)
			if err != nil {
				compileErr = fmt.Errorf("schema %s: %w", n, err)
				return
			}
			compiled[n] = s
		}
	})
	if compileErr != nil {
		return nil, compileErr
	}
	s, ok := compiled[name]
	if !ok {
		return nil, fmt.Errorf("unknown schema %q", name)
	}
	return s, nil
}

// ValidateJSON checks raw JSON against one of the embedded schemas (see the
// constants of package schemas). A document that is not JSON yields a
// *ValidationError with an empty field.
//
// Before the schema, a member name given twice in one object and a string
// that is not UTF-8 text are refused, naming the member (strictjson): the
// validator would see only the last of the repeated members, and
// encoding/json would decode such a string as U+FFFD.
func ValidateJSON(schemaName string, raw []byte) error {
	if p, ok := strictjson.Check(raw); !ok {
		return &ValidationError{Schema: schemaName, Fields: []FieldError{{Field: p.Pointer, Reason: p.Reason}}}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &ValidationError{Schema: schemaName, Fields: []FieldError{{Reason: "not valid JSON: " + jsonErrorReason(err)}}}
	}
	return ValidateValue(schemaName, doc)
}

// ValidateValue checks an already decoded JSON value (maps, slices,
// json.Number or float64, strings, bools) against a schema.
func ValidateValue(schemaName string, doc any) error {
	s, err := schemaFor(schemaName)
	if err != nil {
		return err
	}
	if err := s.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &ValidationError{Schema: schemaName, Fields: flatten(ve)}
		}
		return &ValidationError{Schema: schemaName, Fields: []FieldError{{Reason: err.Error()}}}
	}
	return nil
}

// flatten turns the schema validator's error tree into one entry per
// failing leaf, each naming the field it concerns, in a stable order.
func flatten(ve *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		field := pointer(e.InstanceLocation)
		if req, ok := e.ErrorKind.(*kind.Required); ok {
			for _, m := range req.Missing {
				fe := FieldError{Field: field + "/" + m, Reason: "is required"}
				if !seen[fe.String()] {
					seen[fe.String()] = true
					out = append(out, fe)
				}
			}
			return
		}
		ek := e.ErrorKind
		if ap, ok := ek.(*kind.AdditionalProperties); ok {
			// The validator lists them in map order.
			names := slices.Clone(ap.Properties)
			slices.Sort(names)
			ek = &kind.AdditionalProperties{Properties: names}
		}
		fe := FieldError{Field: field, Reason: reasonOf(ek)}
		if !seen[fe.String()] {
			seen[fe.String()] = true
			out = append(out, fe)
		}
	}
	walk(ve)
	// By field, then reason: the validator visits members in map order,
	// and the same document must always get the same error.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// reasonOf is a validator error's reason without the offending value.
// The validator quotes it ("'+447700900123x' does not match pattern",
// "minimum: got 12345, want 0"), and these reasons reach logs, problem
// answers and dead_letters.value_error: a value can be a phone number, an
// OTP or a message. The field path names what was wrong; the reason says
// which rule, never the value.
func reasonOf(ek jsonschema.ErrorKind) string {
	switch k := ek.(type) {
	case *kind.Pattern:
		return "does not match pattern " + k.Want
	case *kind.Format:
		return "is not a valid " + k.Want
	case *kind.Minimum:
		return printer.Sprintf("must be at least %v", ratString(k.Want))
	case *kind.Maximum:
		return printer.Sprintf("must be at most %v", ratString(k.Want))
	case *kind.ExclusiveMinimum:
		return printer.Sprintf("must be greater than %v", ratString(k.Want))
	case *kind.ExclusiveMaximum:
		return printer.Sprintf("must be less than %v", ratString(k.Want))
	case *kind.MultipleOf:
		return printer.Sprintf("must be a multiple of %v", ratString(k.Want))
	case *kind.PropertyNames:
		return "has a member name the schema refuses"
	case *kind.ContentEncoding:
		return "is not " + k.Want + " encoded"
	case *kind.ContentMediaType:
		return "is not of media type " + k.Want
	}
	// The remaining kinds name types, lengths, counts, member names and
	// the schema's own values (enum, const), never the document's values.
	return ek.LocalizedString(printer)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(6)
}

// jsonErrorReason describes a JSON decoding error without the bytes it
// stumbled on (encoding/json quotes a number it could not store, and a
// syntax error the character it met).
func jsonErrorReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &pe):
		return "a date-time is not in RFC 3339 form"
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		where := te.Field
		if where == "" {
			where = "a value"
		}
		return fmt.Sprintf("%s cannot hold a JSON %s", where, strings.Fields(te.Value + " value")[0])
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return "cannot be decoded"
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	var sb strings.Builder
	for _, p := range loc {
		sb.WriteByte('/')
		sb.WriteString(strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1"))
	}
	return sb.String()
}
