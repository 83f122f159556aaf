package ingest

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/wanotify/wanotify/pkg/contract"
)

// The locating decoder must know exactly the fields the fast one does.
func TestBothRequestShapesHaveTheSameFields(t *testing.T) {
	if a, b := jsonFields(reflect.TypeFor[wireRequest]()), jsonFields(reflect.TypeFor[wireRequestRaw]()); !slices.Equal(a, b) {
		t.Fatalf("wireRequest %v, wireRequestRaw %v", a, b)
	}
}

func TestDecodeRequestNamesNestedFieldsByPath(t *testing.T) {
	for body, field := range map[string]string{
		`{"template":{"name":"a","language":"en","x":1}}`: "/template/x",
		`{"text":{"body":"a","x":1}}`:                     "/text/x",
		`{"template":{"name":2}}`:                         "/template/name",
		`{"text":[]}`:                                     "/text",
		`{"x":1,"template":{"y":2}}`:                      "/x",
		`{"ttl":"60"}`:                                    "/ttl",
		`{"metadata":[]}`:                                 "/metadata",
	} {
		_, err := DecodeRequest([]byte(body))
		var ve *contract.ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != field {
			t.Errorf("%s: %v, want field %s", body, err, field)
		}
	}
	r, err := DecodeRequest([]byte(`{"event_type":"otp","template":null,"text":{"body":"hi","preview_url":true},"ttl":60}`))
	if err != nil || r.Template != nil || r.Text == nil || !r.Text.PreviewURL || r.TTL.Seconds() != 60 {
		t.Fatalf("%+v %v", r, err)
	}
}
