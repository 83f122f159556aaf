package metawebhook

import "testing"

func TestSignVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"object":"whatsapp_business_account"}`)
	h := Sign(secret, body)
	if !Verify(secret, body, h) {
		t.Fatal("own signature did not verify")
	}
	for name, tc := range map[string]struct {
		secret []byte
		body   []byte
		header string
	}{
		"wrong secret": {[]byte("other"), body, h},
		"changed body": {secret, append([]byte{}, append(body, ' ')...), h},
		"no prefix":    {secret, body, h[len("sha256="):]},
		"not hex":      {secret, body, "sha256=zz"},
		"short":        {secret, body, "sha256=abcd"},
		"empty header": {secret, body, ""},
		"empty secret": {nil, body, h},
	} {
		if Verify(tc.secret, tc.body, tc.header) {
			t.Errorf("%s: verified, want rejected", name)
		}
	}
}
