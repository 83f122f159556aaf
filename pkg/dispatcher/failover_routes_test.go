package dispatcher

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/senders"
)

// A sender's failover gets a route of its own from the registry: another
// sender's, or one written in place with its own client and secret.
func TestNewRouterBuildsFailoverRoutes(t *testing.T) {
	reg, err := senders.Parse([]byte(`
senders:
  - {name: a-otp, tenants: [a], number_id: "1", failover: a-backup}
  - {name: a-backup, tenants: [a], number_id: "2"}
  - name: b-main
    tenants: [b]
    number_id: "3"
    failover: {provider: cloudapi, base_url: "http://127.0.0.1:1", number_id: "3", credentials: {env: B_META_TOKEN}}
tenants:
  - {name: a, default_sender: a-otp}
  - {name: b, default_sender: b-main}
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	pc := LoadProvider(envOf(map[string]string{"WANOTIFY_XPRESSBOT_API_KEY": "global"}))
	env := map[string]string{"B_META_TOKEN": "token"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	r, closeFn, err := pc.NewRouter(reg, lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if !r.HasFailover("a-otp") || r.HasFailover("a-backup") || r.FailoverName("b-main") != ProviderCloudAPI || r.Name() != "cloudapi+xpressbot" {
		t.Fatalf("failover routes: a-otp %v a-backup %v b-main %q name %q", r.HasFailover("a-otp"), r.HasFailover("a-backup"), r.FailoverName("b-main"), r.Name())
	}
	// The failover's secret missing stops the start, naming the sender,
	// its failover and the variable.
	delete(env, "B_META_TOKEN")
	_, _, err = pc.NewRouter(reg, lookup, nil)
	if err == nil || !strings.Contains(err.Error(), `sender "b-main" failover`) || !strings.Contains(err.Error(), "B_META_TOKEN is not set") {
		t.Fatalf("missing failover secret: %v", err)
	}
}

// A failover that does not exist stops the dispatcher at start, naming
// the variable and the field.
func TestConfigureRefusesAMissingFailover(t *testing.T) {
	e := envOf(map[string]string{
		"WANOTIFY_SENDERS": `{"senders":[{"name":"vip","tenants":["acme"],"number_id":"1","failover":"vip-backup"}],` +
			`"tenants":[{"name":"acme","default_sender":"vip"}]}`,
		"WANOTIFY_XPRESSBOT_API_KEY": "k",
	})
	_, err := Configure(e)
	if err == nil {
		t.Fatal("started with a failover to a sender that does not exist")
	}
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_SENDERS") ||
		!strings.Contains(err.Error(), `senders[0] (vip).failover: sender "vip-backup" is not listed under senders`) {
		t.Fatalf("error does not name the variable and field: %v", err)
	}
}
