package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/wanotify/wanotify/pkg/sdk"
)

// Keyring maps API keys to tenants. It holds only SHA-256 hashes of the
// keys, so the configuration never contains a usable secret.
type Keyring struct {
	hashes  [][sha256.Size]byte
	tenants []string
}

// ParseKeys reads "tenant:sha256hex" entries. A tenant may appear more
// than once (several keys while one is rotated out); the same hash may not
// belong to two tenants.
func ParseKeys(entries []string) (*Keyring, error) {
	k := &Keyring{}
	var errs []error
	owner := map[[sha256.Size]byte]string{}
	for i, e := range entries {
		tenant, hexHash, ok := strings.Cut(strings.TrimSpace(e), ":")
		if !ok {
			errs = append(errs, fmt.Errorf("entry %d: want tenant:sha256hex", i+1))
			continue
		}
		if !sdk.IsTenant(tenant) {
			errs = append(errs, fmt.Errorf("entry %d: tenant %q: 1 to 64 lower-case letters, digits, '_' and '-'", i+1, tenant))
			continue
		}
		raw, err := hex.DecodeString(strings.ToLower(hexHash))
		if err != nil || len(raw) != sha256.Size {
			// The value is never echoed: it might be a key pasted by mistake.
			errs = append(errs, fmt.Errorf("entry %d (tenant %s): not a SHA-256 hex digest (64 hex digits; hash a key with: printf %%s \"$KEY\" | sha256sum)", i+1, tenant))
			continue
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		if prev, dup := owner[h]; dup && prev != tenant {
			errs = append(errs, fmt.Errorf("entry %d: the same key hash is configured for tenants %s and %s", i+1, prev, tenant))
			continue
		}
		owner[h] = tenant
		k.hashes = append(k.hashes, h)
		k.tenants = append(k.tenants, tenant)
	}
	if len(errs) == 0 && len(k.hashes) == 0 {
		errs = append(errs, errors.New("no API key configured"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// HashKey is the hash of key as it appears in WANOTIFY_INGEST_API_KEYS
// (the same as `printf %s "$KEY" | sha256sum`).
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// Tenant returns the tenant whose key is presented, comparing the key's
// hash with every configured hash in constant time (the loop does not stop
// at a match, so the timing does not tell which entry matched).
func (k *Keyring) Tenant(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	h := sha256.Sum256([]byte(key))
	match := -1
	for i := range k.hashes {
		if subtle.ConstantTimeCompare(h[:], k.hashes[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return k.tenants[match], true
}

// Tenants lists the configured tenants (with repeats for several keys).
func (k *Keyring) Tenants() []string { return append([]string(nil), k.tenants...) }

func (k *Keyring) hasDevKey() bool {
	dev := sha256.Sum256([]byte(DevAPIKey))
	for _, h := range k.hashes {
		if subtle.ConstantTimeCompare(dev[:], h[:]) == 1 {
			return true
		}
	}
	return false
}

// presentedKey reads the key from "Authorization: Bearer <key>" or
// "X-API-Key: <key>".
func presentedKey(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:])
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}
