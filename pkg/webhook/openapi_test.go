package webhook

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

// TestOpenAPIMatchesTheReceiver keeps schemas/openapi-webhook.yaml honest:
// the documented routes and answers are the served ones, and every
// documented request example is accepted as it stands.
func TestOpenAPIMatchesTheReceiver(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testinfra.RepoRoot(), "schemas", "openapi-webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string `yaml:"openapi"`
		Paths   map[string]map[string]struct {
			Parameters []struct {
				Name string `yaml:"name"`
				In   string `yaml:"in"`
			} `yaml:"parameters"`
			RequestBody struct {
				Content map[string]struct {
					Examples map[string]struct {
						Value any `yaml:"value"`
					} `yaml:"examples"`
				} `yaml:"content"`
			} `yaml:"requestBody"`
			Responses map[string]any `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	ops := doc.Paths[DefaultPath]
	codes := func(method string) []string {
		var out []string
		for c := range ops[method].Responses {
			out = append(out, c)
		}
		slices.Sort(out)
		return out
	}
	for method, want := range map[string][]string{
		"get":  {"200", "400", "403"},
		"post": {"200", "400", "401", "405", "413", "503"},
	} {
		if got := codes(method); !slices.Equal(got, want) {
			t.Errorf("%s %s documents %v, the receiver answers %v", method, DefaultPath, got, want)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if _, ok := doc.Paths[p]["get"]; !ok {
			t.Errorf("GET %s not documented", p)
		}
	}
	var header string
	for _, p := range ops["post"].Parameters {
		if p.In == "header" {
			header = p.Name
		}
	}
	if header != DefaultConfig().SignatureHeader {
		t.Errorf("documented signature header %q, default is %q", header, DefaultConfig().SignatureHeader)
	}

	examples := ops["post"].RequestBody.Content["application/json"].Examples
	if len(examples) == 0 {
		t.Fatal("no request examples")
	}
	h := newHarness(t, nil, nil)
	total := 0
	for name, ex := range examples {
		body, err := json.Marshal(ex.Value)
		if err != nil {
			t.Fatalf("example %s: %v", name, err)
		}
		got := h.post(body)
		if got.status != http.StatusOK {
			t.Errorf("example %s: %d %s", name, got.status, got.body)
			continue
		}
		var a struct {
			Events int `json:"events"`
		}
		if err := json.Unmarshal(got.body, &a); err != nil || a.Events == 0 {
			t.Errorf("example %s stored no event: %s", name, got.body)
		}
		total += a.Events
	}
	consumeStatus(t, h.brokers, total)
}
