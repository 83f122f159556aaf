package xpressbot_test

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
)

// An http:// base URL sends the API key in clear: refused unless
// WANOTIFY_PROVIDER_ALLOW_INSECURE_URL says so (then a start warning);
// loopback (the local simulator) is always fine.
func TestPlainHTTPBaseURLIsRefused(t *testing.T) {
	loadEnv := func(vars map[string]string) (xpressbot.Options, *config.Env) {
		e := config.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
		return xpressbot.Load(e), e
	}
	remote := map[string]string{xpressbot.EnvBaseURL: "http://api.xpressbot.example", xpressbot.EnvAPIKey: "k-123"}
	o, e := loadEnv(remote)
	err := o.Validate()
	if err == nil || !strings.Contains(err.Error(), xpressbot.EnvBaseURL) || !strings.Contains(err.Error(), provider.EnvAllowInsecureURL) {
		t.Fatalf("http:// to a remote host: Validate = %v, want a refusal naming %s and %s", err, xpressbot.EnvBaseURL, provider.EnvAllowInsecureURL)
	}
	if strings.Contains(err.Error(), "k-123") {
		t.Fatal("the error shows the API key")
	}
	if _, err := xpressbot.New(o); err == nil {
		t.Fatal("New built a client Validate refuses")
	}
	if len(e.Warnings()) != 1 || e.Warnings()[0].Name != xpressbot.EnvBaseURL {
		t.Errorf("warnings %v, want one about %s", e.Warnings(), xpressbot.EnvBaseURL)
	}

	remote[provider.EnvAllowInsecureURL] = "true"
	if o, e := loadEnv(remote); o.Validate() != nil || len(e.Warnings()) != 1 {
		t.Errorf("explicitly allowed: Validate = %v, warnings %v (want nil and one)", o.Validate(), e.Warnings())
	}

	for _, base := range []string{"https://api.xpressbot.example", "http://127.0.0.1:8090", "http://localhost:8090", "http://[::1]:8090"} {
		o, e := loadEnv(map[string]string{xpressbot.EnvBaseURL: base, xpressbot.EnvAPIKey: "k"})
		if err := o.Validate(); err != nil {
			t.Errorf("%s: %v", base, err)
		}
		if len(e.Warnings()) != 0 {
			t.Errorf("%s: warnings %v", base, e.Warnings())
		}
	}
}
