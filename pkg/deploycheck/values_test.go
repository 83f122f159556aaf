package deploycheck

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// opaque keys hold Kubernetes structures (resources, probe timings,
// security fields) described as a whole by the comment on the key.
var opaque = map[string]bool{
	"resources": true, "liveness": true, "readiness": true, "seccompProfile": true,
	"capabilities": true, "digests": true, "behavior": true,
}

// TestValuesDocumented: every key of values.yaml carries a comment and is
// described by values.schema.json (which refuses unknown keys), down to
// the maps whose keys are the user's (labels, env, resources, ...).
func TestValuesDocumented(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(repoFile(t, chartRel+"/values.yaml"), &doc); err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(repoFile(t, chartRel+"/values.schema.json"), &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	keys := 0
	var walk func(n *yaml.Node, s map[string]any, path string)
	walk = func(n *yaml.Node, s map[string]any, path string) {
		props, _ := s["properties"].(map[string]any)
		if props == nil {
			return // a free-form map: its keys are the user's
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema of %s allows unknown keys", path)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			keys++
			if strings.TrimSpace(k.HeadComment) == "" && strings.TrimSpace(k.LineComment) == "" &&
				!(i == 0 && strings.TrimSpace(n.HeadComment) != "") {
				t.Errorf("values.yaml: %s has no comment", p)
			}
			ps, ok := props[k.Value].(map[string]any)
			if !ok {
				t.Errorf("values.schema.json does not describe %s", p)
				continue
			}
			if d, _ := ps["description"].(string); strings.TrimSpace(d) == "" {
				t.Errorf("values.schema.json: %s has no description", p)
			}
			if v.Kind == yaml.MappingNode && !opaque[k.Value] {
				walk(v, ps, p)
			}
		}
		// Every property the schema names exists in values.yaml, so the
		// defaults document every setting.
		present := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			present[n.Content[i].Value] = true
		}
		var missing []string
		for k := range props {
			if !present[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		for _, k := range missing {
			t.Errorf("values.schema.json describes %s.%s, which values.yaml does not set", path, k)
		}
	}
	walk(doc.Content[0], schema, "")
	if keys < 50 {
		t.Errorf("walked only %d keys of values.yaml", keys)
	}
}

// TestCopiesInSync: the chart ships copies of files kept elsewhere (a chart
// cannot read outside its folder); they must be identical.
func TestCopiesInSync(t *testing.T) {
	root := repoRoot(t)
	pairs := [][2]string{
		{"topics.yaml", chartRel + "/files/topics.yaml"},
		{"deploy/prometheus/alerts.yml", chartRel + "/files/alerts.yml"},
	}
	src, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	dst, _ := filepath.Glob(filepath.Join(root, "helm", "wanotify", "files", "dashboards", "*.json"))
	names := map[string]bool{}
	for _, f := range append(src, dst...) {
		names[filepath.Base(f)] = true
	}
	for n := range names {
		pairs = append(pairs, [2]string{"deploy/grafana/dashboards/" + n, chartRel + "/files/dashboards/" + n})
	}
	for _, p := range pairs {
		a, errA := os.ReadFile(filepath.Join(root, filepath.FromSlash(p[0])))
		b, errB := os.ReadFile(filepath.Join(root, filepath.FromSlash(p[1])))
		switch {
		case errA != nil || errB != nil:
			t.Errorf("%s and %s must both exist (make deploy-sync copies them): %v %v", p[0], p[1], errA, errB)
		case !bytes.Equal(a, b):
			t.Errorf("%s differs from %s; run make deploy-sync", p[1], p[0])
		}
	}
}
