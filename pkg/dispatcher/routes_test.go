package dispatcher

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/senders"
)

func TestNewRouterBuildsEverySendersRoute(t *testing.T) {
	reg, err := senders.Parse([]byte(`
senders:
  - {name: a-otp, tenants: [a], number_id: "1", credentials: {env: A_KEY}}
  - {name: a-bulk, tenants: [a], number_id: "2", credentials: {env: A_KEY}}
  - {name: b-main, tenants: [b], number_id: "3", provider: cloudapi, base_url: "http://127.0.0.1:1"}
  - {name: c-main, tenants: [c], number_id: "4"}
tenants:
  - {name: a, default_sender: a-otp}
  - {name: b, default_sender: b-main}
  - {name: c, default_sender: c-main}
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	pc := LoadProvider(envOf(map[string]string{"WANOTIFY_XPRESSBOT_API_KEY": "global", "WANOTIFY_CLOUDAPI_ACCESS_TOKEN": "token"}))
	env := map[string]string{"A_KEY": "a-secret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	r, closeFn, err := pc.NewRouter(reg, lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if got := strings.Join(r.Senders(), ","); got != "a-bulk,a-otp,b-main,c-main" || r.Name() != "cloudapi+xpressbot" {
		t.Fatalf("senders %s, name %s", got, r.Name())
	}
	// A sender whose secret is missing stops the start, naming sender and
	// variable, never the secret.
	delete(env, "A_KEY")
	_, _, err = pc.NewRouter(reg, lookup, nil)
	if err == nil || !strings.Contains(err.Error(), `sender "a-otp"`) || !strings.Contains(err.Error(), "A_KEY is not set") {
		t.Fatalf("missing secret: %v", err)
	}
	pc.Xpressbot.APIKey = ""
	env["A_KEY"] = "a-secret"
	_, _, err = pc.NewRouter(reg, lookup, nil)
	if err == nil || !strings.Contains(err.Error(), `sender "c-main"`) || !strings.Contains(err.Error(), "WANOTIFY_XPRESSBOT_API_KEY") {
		t.Fatalf("missing default secret: %v", err)
	}
}
