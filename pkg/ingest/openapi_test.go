package ingest

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"gopkg.in/yaml.v3"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

type openAPI struct {
	OpenAPI string                          `yaml:"openapi"`
	Paths   map[string]map[string]openAPIOp `yaml:"paths"`
	raw     map[string]any
}

type openAPIOp struct {
	Responses map[string]any `yaml:"responses"`
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testinfra.RepoRoot(), "schemas", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if err := yaml.Unmarshal(raw, &doc.raw); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q, want 3.1.x", doc.OpenAPI)
	}
	return &doc
}

// TestOpenAPIDocumentsEveryRouteAndStatus holds schemas/openapi.yaml and
// the router together: every route and method the router serves is
// documented with exactly the statuses its handler can answer, and the
// document describes nothing the router does not serve. The handler tests
// in turn fail when a handler answers with a status it does not declare.
func TestOpenAPIDocumentsEveryRouteAndStatus(t *testing.T) {
	doc := loadOpenAPI(t)
	h := newHarnessOn(t, testinfraBrokers(t), nil, nil)
	declared := map[string][]int{}
	for _, rt := range apiRoutes {
		declared[rt.name] = rt.codes
	}
	for name, codes := range adminRoutes {
		declared[name] = codes
	}

	served := map[string]bool{}
	walk := func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := r.GetMethods()
		if err != nil {
			t.Errorf("route %s matches every method", path)
			return nil
		}
		for _, m := range methods {
			name := m + " " + path
			served[name] = true
			want, ok := declared[name]
			if !ok {
				t.Errorf("%s is served but declares no status codes", name)
				continue
			}
			op, ok := doc.Paths[path][strings.ToLower(m)]
			if !ok {
				t.Errorf("%s is served but not in openapi.yaml", name)
				continue
			}
			var got []int
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q is not a status code", name, code)
					continue
				}
				got = append(got, n)
			}
			sort.Ints(got)
			w := slices.Clone(want)
			sort.Ints(w)
			if !slices.Equal(got, w) {
				t.Errorf("%s: openapi.yaml documents %v, the handler answers %v", name, got, w)
			}
		}
		return nil
	}
	// The API port and the admin listener together serve what the
	// document describes.
	for _, r := range []*mux.Router{h.router, h.admin} {
		if err := r.Walk(walk); err != nil {
			t.Fatal(err)
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if name := strings.ToUpper(m) + " " + path; !served[name] {
				t.Errorf("openapi.yaml documents %s, which is not served", name)
			}
		}
	}
}

// TestOpenAPIReferencesResolve catches a $ref to a component that does
// not exist.
func TestOpenAPIReferencesResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "$ref" {
					ref, _ := e.(string)
					if !resolves(doc.raw, ref) {
						t.Errorf("unresolved $ref %q", ref)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc.raw)
}

func resolves(root map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = root
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// TestOpenAPISchemasMatchTheWireTypes compares the documented properties
// with the JSON fields the handlers read and write.
func TestOpenAPISchemasMatchTheWireTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	schemas := doc.raw["components"].(map[string]any)["schemas"].(map[string]any)
	for name, typ := range map[string]any{
		"NotificationRequest": wireRequest{},
		"Template":            wireTemplate{},
		"Text":                wireText{},
		"BatchRequest":        wireBatch{},
		"Accepted":            Accepted{},
		"BatchResponse":       BatchResponse{},
		"BatchResult":         BatchResult{},
		"Problem":             Problem{},
		"NotificationView":    View{},
		"TimelineEvent":       TimelineEvent{},
	} {
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Errorf("schema %s missing", name)
			continue
		}
		var documented []string
		for p := range s["properties"].(map[string]any) {
			documented = append(documented, p)
		}
		sort.Strings(documented)
		fields := jsonFields(reflect.TypeOf(typ))
		if !slices.Equal(documented, fields) {
			t.Errorf("schema %s documents %v, the Go type has %v", name, documented, fields)
		}
	}
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIExampleIsAccepted posts the document's own request example.
func TestOpenAPIExampleIsAccepted(t *testing.T) {
	doc := loadOpenAPI(t)
	post := doc.raw["paths"].(map[string]any)["/v1/notifications"].(map[string]any)["post"].(map[string]any)
	ex := post["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["examples"].(map[string]any)["otp"].(map[string]any)["value"]
	body, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil)
	if r := h.post(keyAcme, string(body)); r.code != http.StatusAccepted {
		t.Fatalf("the documented example is refused: %d %s", r.code, r.body)
	}
}
