package dispatcher

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/cloudapi"
	"github.com/wanotify/wanotify/pkg/provider/route"
	"github.com/wanotify/wanotify/pkg/provider/xpressbot"
	"github.com/wanotify/wanotify/pkg/senders"
)

// NewRouter builds the provider of every registered sender: one client
// per distinct route (provider, origin, credentials), configured like
// the WANOTIFY_XPRESSBOT_* / WANOTIFY_CLOUDAPI_* client with the sender's
// base URL and secret, sending from the sender's number id. lookup reads
// the variables the registry refers to (os.LookupEnv in the service); a
// sender without a credentials reference uses the provider's own
// WANOTIFY_XPRESSBOT_API_KEY or WANOTIFY_CLOUDAPI_ACCESS_TOKEN. A sender
// with a failover gets its second route's client too.
func (c ProviderConfig) NewRouter(reg *senders.Registry, lookup func(string) (string, bool), log *slog.Logger) (*route.Router, func(), error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	clients := map[string]provider.Provider{}
	var closers []func()
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	clientFor := func(s senders.Sender) (provider.Provider, error) {
		kind := s.Provider
		if kind == "" {
			kind = c.Kind
		}
		key := kind + "|" + s.BaseURL + "|env:" + s.Credentials.Env + "|file:" + s.Credentials.File
		if p, ok := clients[key]; ok {
			return p, nil
		}
		p, closeFn, err := c.client(kind, s, lookup, log)
		if err != nil {
			return nil, err
		}
		clients[key] = p
		closers = append(closers, closeFn)
		return p, nil
	}
	targets := map[string]route.Target{}
	for _, s := range reg.Senders() {
		p, err := clientFor(s)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: sender %q: %w", reg.Source(), s.Name, err)
		}
		t := route.Target{Provider: p, NumberID: s.NumberID}
		if f, ok := reg.Failover(s.Name); ok {
			// The second route: another sender's, or one written in
			// place (its own client when its origin or credentials
			// differ).
			fp, err := clientFor(f)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("%s: sender %q failover: %w", reg.Source(), s.Name, err)
			}
			t.Failover = &route.Target{Provider: fp, NumberID: f.NumberID}
		}
		targets[s.Name] = t
	}
	r, err := route.New(targets)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return r, closeAll, nil
}

// client builds one route's client.
func (c ProviderConfig) client(kind string, s senders.Sender, lookup func(string) (string, bool), log *slog.Logger) (provider.Provider, func(), error) {
	// A sender without a reference uses the provider's own variable, as
	// read into c (which also honours its command-line flag).
	withDefault := func(env, configured string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == env && configured != "" {
				return configured, true
			}
			return lookup(k)
		}
	}
	switch kind {
	case ProviderXpressbot:
		o := c.Xpressbot
		secret, err := s.Secret(withDefault(xpressbot.EnvAPIKey, o.APIKey), xpressbot.EnvAPIKey)
		if err != nil {
			return nil, nil, err
		}
		o.APIKey, o.Logger = secret, log
		if s.BaseURL != "" {
			o.BaseURL = s.BaseURL
		}
		cl, err := xpressbot.New(o)
		if err != nil {
			return nil, nil, err
		}
		return cl, cl.Close, nil
	case ProviderCloudAPI:
		o := c.CloudAPI
		secret, err := s.Secret(withDefault(cloudapi.EnvAccessToken, o.AccessToken), cloudapi.EnvAccessToken)
		if err != nil {
			return nil, nil, err
		}
		o.AccessToken, o.Logger = secret, log
		if s.BaseURL != "" {
			o.BaseURL = s.BaseURL
		}
		cl, err := cloudapi.New(o)
		if err != nil {
			return nil, nil, err
		}
		return cl, cl.Close, nil
	}
	return nil, nil, fmt.Errorf("WANOTIFY_PROVIDER: %q must be %q or %q", kind, ProviderXpressbot, ProviderCloudAPI)
}
