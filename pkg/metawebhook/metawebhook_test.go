package metawebhook

import (
	"fmt"
	"sync"
	"testing"
)

func TestSignVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"object":"whatsapp_business_account"}`)
	h := Sign(secret, body)
	if !Verify(secret, body, h) {
		t.Fatal("own signature did not verify")
	}
	v := NewVerifier(secret)
	for range 3 { // the hashes it reuses come back clean
		if !v.Verify(body, h) {
			t.Fatal("Verifier: own signature did not verify")
		}
	}
	for name, tc := range map[string]struct {
		secret []byte
		body   []byte
		header string
	}{
		"wrong secret":         {[]byte("other"), body, h},
		"changed body":         {secret, append([]byte{}, append(body, ' ')...), h},
		"no prefix":            {secret, body, h[len("sha256="):]},
		"not hex":              {secret, body, "sha256=zz"},
		"not hex, full length": {secret, body, "sha256=" + h[len("sha256=")+2:] + "zz"},
		"short":                {secret, body, "sha256=abcd"},
		"long":                 {secret, body, h + "00"},
		"empty header":         {secret, body, ""},
		"empty secret":         {nil, body, h},
	} {
		if Verify(tc.secret, tc.body, tc.header) {
			t.Errorf("%s: verified, want rejected", name)
		}
		if NewVerifier(tc.secret).Verify(tc.body, tc.header) {
			t.Errorf("%s: Verifier verified, want rejected", name)
		}
	}
	// A refused header leaves nothing behind for the next check.
	if v.Verify(append([]byte{}, append(body, ' ')...), h) || !v.Verify(body, h) {
		t.Error("Verifier: a refusal changed the next answer")
	}
}

func TestVerifierConcurrentUse(t *testing.T) {
	secret := []byte("s3cret")
	v := NewVerifier(secret)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				body := fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)
				if !v.Verify(body, Sign(secret, body)) {
					errs <- fmt.Sprintf("goroutine %d: body %d refused", g, i)
					return
				}
				if v.Verify(body, Sign(secret, append(body, 'x'))) {
					errs <- fmt.Sprintf("goroutine %d: another body's signature accepted", g)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
