package xpressbot

import (
	"strings"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/insecure"
	"github.com/wanotify/wanotify/pkg/provider"
)

// Load reads Options through the shared configuration reader, so the
// variables appear in the service's -help and the README table.
func Load(e *config.Env) Options {
	o := Options{
		BaseURL:      e.String(EnvBaseURL, "http://127.0.0.1:8090", "Xpressbot API origin (the local simulator by default)"),
		APIKey:       e.Secret(EnvAPIKey, "Xpressbot API key"),
		AuthMode:     AuthMode(strings.ToLower(e.String(EnvAuthMode, string(DefaultAuthMode), "how the API key is sent: x-api-key or bearer"))),
		SendPath:     e.String(EnvSendPath, DefaultSendPath, "path of the send endpoint under the base URL"),
		Timeout:      e.Duration(EnvTimeout, DefaultTimeout, "timeout of one send call"),
		MaxIdleConns: e.Int(EnvMaxIdleConns, 0, "keep-alive connections kept to Xpressbot (0: as many as the dispatcher's calls in flight, WANOTIFY_DISPATCHER_CONCURRENCY)"),
		NoIdempotencyKeys: !e.Bool("WANOTIFY_XPRESSBOT_IDEMPOTENCY_KEYS", true,
			"Xpressbot deduplicates sends by idempotency_key, so a timed-out send is retried; false: it is reported outcome_unknown instead"),
		AllowInsecureURL: e.Bool(provider.EnvAllowInsecureURL, false, provider.AllowInsecureURLDoc),
	}
	if insecure.PlainHTTP(o.BaseURL) {
		e.Warn(EnvBaseURL, "the Xpressbot base URL %s is plain http: the API key crosses the network in clear", o.BaseURL)
	}
	return o
}
