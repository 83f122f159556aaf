package cloudapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/provider"
	"github.com/wanotify/wanotify/pkg/provider/cloudapi"
	"github.com/wanotify/wanotify/pkg/provider/providertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Suite{New: func(t *testing.T, target providertest.Target) provider.Provider {
		c, err := cloudapi.New(cloudapi.Options{BaseURL: target.URL, AccessToken: target.APIKey, Timeout: target.Timeout})
		if err != nil {
			t.Fatalf("cloudapi.New: %v", err)
		}
		t.Cleanup(c.Close)
		return c
	}})
}

func TestOptionsValidate(t *testing.T) {
	if err := (cloudapi.Options{AccessToken: "t"}).Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	err := (cloudapi.Options{BaseURL: "graph", Version: "21", Timeout: -1, MaxIdleConns: -1, PhoneNumberID: "a/b"}).Validate()
	for _, w := range []string{
		"BaseURL (WANOTIFY_CLOUDAPI_BASE_URL)", "Version (WANOTIFY_CLOUDAPI_VERSION)",
		"AccessToken (WANOTIFY_CLOUDAPI_ACCESS_TOKEN): is required", "Timeout (WANOTIFY_CLOUDAPI_TIMEOUT)",
		"MaxIdleConns (WANOTIFY_CLOUDAPI_MAX_IDLE_CONNS)", "PhoneNumberID (WANOTIFY_CLOUDAPI_PHONE_NUMBER_ID)",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %v does not mention %q", err, w)
		}
	}
	env := map[string]string{cloudapi.EnvAccessToken: "tok", cloudapi.EnvVersion: "v22.0", cloudapi.EnvTimeout: "2s",
		cloudapi.EnvPhoneNumberID: "42", cloudapi.EnvMaxIdleConns: "3"}
	e := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	o := cloudapi.Load(e)
	err = e.Err()
	if err != nil || o.AccessToken != "tok" || o.Version != "v22.0" || o.Timeout != 2*time.Second ||
		o.PhoneNumberID != "42" || o.MaxIdleConns != 3 {
		t.Fatalf("Load = %+v, %v", o, err)
	}
}

type captured struct {
	mu         sync.Mutex
	path, auth string
	body       []byte
}

// last returns the last request seen (zero values if none).
func (c *captured) last() (path, auth string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.path, c.auth, c.body
}

func fakeGraph(t *testing.T, status int, payload string, got *captured) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.mu.Lock()
		got.path, got.auth, got.body = r.URL.Path, r.Header.Get("Authorization"), body
		got.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, payload)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClient(t *testing.T, o cloudapi.Options) *cloudapi.Client {
	c, err := cloudapi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

const okPayload = `{"messaging_product":"whatsapp","contacts":[{"input":"447700900123","wa_id":"447700900123"}],"messages":[{"id":"wamid.OK"}]}`

func TestTemplateRequestInMetaShape(t *testing.T) {
	var got captured
	url := fakeGraph(t, 200, okPayload, &got)
	c := newClient(t, cloudapi.Options{BaseURL: url, AccessToken: "tok"})
	m := providertest.TextMessage(1, "")
	m.Text = nil
	m.Template = &contract.Template{Name: "invoice_due", Language: "en_US", Parameters: []string{"Ada", "42"}}
	id, err := c.Send(context.Background(), m)
	if err != nil || id != "wamid.OK" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	path, auth, body := got.last()
	if path != "/"+cloudapi.DefaultVersion+"/"+providertest.Sender+"/messages" || auth != "Bearer tok" {
		t.Fatalf("path %q auth %q", path, auth)
	}
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"447700900123","type":"template",` +
		`"template":{"name":"invoice_due","language":{"code":"en_US"},"components":[{"type":"body","parameters":[` +
		`{"type":"text","text":"Ada"},{"type":"text","text":"42"}]}]},"biz_opaque_callback_data":"` + m.NotificationID + `"}`
	if string(body) != want {
		t.Fatalf("body\n got %s\nwant %s", body, want)
	}
}

func TestTextRequestAndDefaultSender(t *testing.T) {
	var got captured
	url := fakeGraph(t, 200, okPayload, &got)
	c := newClient(t, cloudapi.Options{BaseURL: url, AccessToken: "tok", Version: "v19.0", PhoneNumberID: "777"})
	m := providertest.TextMessage(1, "hello")
	m.Sender = ""
	m.Text.PreviewURL = true
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	path, _, raw := got.last()
	if path != "/v19.0/777/messages" {
		t.Fatalf("path %q", path)
	}
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	text, _ := body["text"].(map[string]any)
	if body["type"] != "text" || text["body"] != "hello" || text["preview_url"] != true || body["template"] != nil {
		t.Fatalf("text body %s", raw)
	}
	// No sender at all is the caller's bug: permanent, and nothing is sent.
	var got2 captured
	url2 := fakeGraph(t, 200, okPayload, &got2)
	c2 := newClient(t, cloudapi.Options{BaseURL: url2, AccessToken: "tok"})
	_, err := c2.Send(context.Background(), m)
	if path, _, _ := got2.last(); provider.AsError(err).Class != provider.Permanent || provider.AsError(err).Code != "invalid_message" || path != "" {
		t.Fatalf("err = %v, request path %q", err, path)
	}
}

func TestGraphErrors(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		payload string
		class   provider.Class
		code    string
		msg     string
	}{
		{"re-engagement", 400, `{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"more than 24 hours"},"fbtrace_id":"A"}}`,
			provider.Permanent, "meta_131047", "(#131047) Re-engagement message"},
		{"throughput", 400, `{"error":{"message":"rate","code":130429}}`, provider.Throttled, "meta_130429", "rate"},
		{"token", 401, `{"error":{"message":"Error validating access token","type":"OAuthException","code":190,"error_subcode":463}}`,
			provider.AccountFault, "meta_190", "Error validating access token"},
		{"unknown code", 400, `{"error":{"message":"new","code":135000}}`, provider.Retryable, "meta_135000", "new"},
		{"no body", 500, ``, provider.Retryable, "http_500", ""},
		{"success without messages", 200, `{"messaging_product":"whatsapp","messages":[]}`, provider.Retryable, "bad_response", "success answer without a message id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got captured
			url := fakeGraph(t, c.status, c.payload, &got)
			cl := newClient(t, cloudapi.Options{BaseURL: url, AccessToken: "EAAG-secret-token"})
			_, err := cl.Send(context.Background(), providertest.TextMessage(1, "x"))
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Class != c.class || pe.Code != c.code || pe.HTTPStatus != c.status || pe.Message != c.msg {
				t.Fatalf("err = %#v, want %s %s %q", pe, c.class, c.code, c.msg)
			}
			if strings.Contains(err.Error(), "EAAG-secret-token") {
				t.Fatal("error leaks the token")
			}
		})
	}
}
