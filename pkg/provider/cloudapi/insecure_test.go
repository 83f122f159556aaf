package cloudapi_test

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/cloudapi"
)

// An http:// Graph API origin sends the access token in clear: refused
// unless WANOTIFY_PROVIDER_ALLOW_INSECURE_URL says so (then a start
// warning); loopback is always fine.
func TestPlainHTTPBaseURLIsRefused(t *testing.T) {
	loadEnv := func(vars map[string]string) (cloudapi.Options, *config.Env) {
		e := config.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
		return cloudapi.Load(e), e
	}
	remote := map[string]string{cloudapi.EnvBaseURL: "http://graph.facebook.com", cloudapi.EnvAccessToken: "EAAG-token"}
	o, e := loadEnv(remote)
	err := o.Validate()
	if err == nil || !strings.Contains(err.Error(), cloudapi.EnvBaseURL) || !strings.Contains(err.Error(), provider.EnvAllowInsecureURL) {
		t.Fatalf("http:// to a remote host: Validate = %v, want a refusal naming %s and %s", err, cloudapi.EnvBaseURL, provider.EnvAllowInsecureURL)
	}
	if strings.Contains(err.Error(), "EAAG-token") {
		t.Fatal("the error shows the token")
	}
	if len(e.Warnings()) != 1 {
		t.Errorf("warnings %v, want one", e.Warnings())
	}
	remote[provider.EnvAllowInsecureURL] = "1"
	if o, _ := loadEnv(remote); o.Validate() != nil {
		t.Errorf("explicitly allowed: %v", o.Validate())
	}
	for _, base := range []string{"", "https://graph.facebook.com", "http://127.0.0.1:8090"} {
		o, e := loadEnv(map[string]string{cloudapi.EnvBaseURL: base, cloudapi.EnvAccessToken: "t"})
		if base == "" {
			o, e = loadEnv(map[string]string{cloudapi.EnvAccessToken: "t"})
		}
		if err := o.Validate(); err != nil || len(e.Warnings()) != 0 {
			t.Errorf("%q: Validate = %v, warnings %v", base, err, e.Warnings())
		}
	}
}
