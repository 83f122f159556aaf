package cloudapi

import (
	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/insecure"
	"github.com/wanotify/wanotify/pkg/provider"
)

// Load reads Options through the shared configuration reader, so the
// variables appear in the service's -help and the README table.
func Load(e *config.Env) Options {
	o := Options{
		BaseURL:          e.String(EnvBaseURL, DefaultBaseURL, "Graph API origin"),
		Version:          e.String(EnvVersion, DefaultVersion, "Graph API version"),
		AccessToken:      e.Secret(EnvAccessToken, "Cloud API access token (system user token)"),
		PhoneNumberID:    e.String(EnvPhoneNumberID, "", "phone number id used when a notification names no sender"),
		Timeout:          e.Duration(EnvTimeout, DefaultTimeout, "timeout of one send call"),
		MaxIdleConns:     e.Int(EnvMaxIdleConns, 0, "keep-alive connections kept to the Graph API (0: as many as the dispatcher's calls in flight, WANOTIFY_DISPATCHER_CONCURRENCY)"),
		AllowInsecureURL: e.Bool(provider.EnvAllowInsecureURL, false, provider.AllowInsecureURLDoc),
	}
	if insecure.PlainHTTP(o.BaseURL) {
		e.Warn(EnvBaseURL, "the Cloud API base URL %s is plain http: the access token crosses the network in clear", o.BaseURL)
	}
	return o
}
