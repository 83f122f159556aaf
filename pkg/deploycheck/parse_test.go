package deploycheck

import (
	"reflect"
	"testing"
)

func TestParseMarkdownVars(t *testing.T) {
	text := "# Configuration\n\n| variable | default | description |\n|---|---|---|\n" +
		"| `WANOTIFY_KAFKA_BROKERS` | `127.0.0.1:9092` | Kafka seed brokers, comma-separated host:port |\n" +
		"| `WANOTIFY_KAFKA_SASL_PASSWORD` | (secret, no default) | SASL password |\n" +
		"| `WANOTIFY_ADMIN_ADDR` |  | address of /healthz (empty: off) |\n" +
		"| `WANOTIFY_X` | `a` | pipes \\| escaped |\n" +
		"| `NOT_OURS` | `x` | ignored |\n" +
		"text mentioning `WANOTIFY_Y` is not a row\n"
	got := ParseMarkdownVars(text)
	want := []Var{
		{Name: "WANOTIFY_KAFKA_BROKERS", Default: "127.0.0.1:9092", Description: "Kafka seed brokers, comma-separated host:port"},
		{Name: "WANOTIFY_KAFKA_SASL_PASSWORD", Secret: true, Description: "SASL password"},
		{Name: "WANOTIFY_ADMIN_ADDR", Description: "address of /healthz (empty: off)"},
		{Name: "WANOTIFY_X", Default: "a", Description: "pipes \\| escaped"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestInterpolations(t *testing.T) {
	cases := []struct {
		in       string
		resolved string
		refs     []Interpolation
	}{
		{"kafka:9092", "kafka:9092", nil},
		{"${A:-kafka:9092}", "kafka:9092", []Interpolation{{Name: "A", Default: "kafka:9092"}}},
		{"${A-x}", "x", []Interpolation{{Name: "A", Default: "x"}}},
		{"${A:-}", "", []Interpolation{{Name: "A"}}},
		{"${A}", "", []Interpolation{{Name: "A"}}},
		{"${SECRET:?set it in .env}", "<SECRET>", []Interpolation{{Name: "SECRET", Required: true}}},
		{"${P:-wanotify}-ingest:${T:-0.1.0}", "wanotify-ingest:0.1.0", []Interpolation{{Name: "P", Default: "wanotify"}, {Name: "T", Default: "0.1.0"}}},
		{"${H:--Xms1g -Xmx1g}", "-Xms1g -Xmx1g", []Interpolation{{Name: "H", Default: "-Xms1g -Xmx1g"}}},
	}
	for _, c := range cases {
		if got := ResolveDefaults(c.in); got != c.resolved {
			t.Errorf("ResolveDefaults(%q) = %q, want %q", c.in, got, c.resolved)
		}
		if got := Interpolations(c.in); !reflect.DeepEqual(got, c.refs) {
			t.Errorf("Interpolations(%q) = %+v, want %+v", c.in, got, c.refs)
		}
	}
}

func TestObjectAccess(t *testing.T) {
	objs, err := ParseManifests([]byte("---\n# comment only\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          ports: [{name: http, containerPort: 8080}]\n---\nkind: Job\nmetadata: {name: j}\nspec: {template: {spec: {containers: []}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("%d objects, want 2 (the empty document skipped)", len(objs))
	}
	pod, ok := objs[0].PodSpec()
	if !ok || objs[0].Name() != "d" {
		t.Fatalf("no pod spec in %v", objs[0])
	}
	c := pod.List("containers")[0]
	if c.Str("name") != "c" || c.Get("ports", "0", "containerPort") != 8080 || c.Str("ports", "0", "name") != "http" {
		t.Errorf("container access: %v", c)
	}
	if c.Get("ports", "1", "name") != nil || c.Str("nope", "x") != "" {
		t.Error("missing paths are not nil")
	}
	if _, ok := objs[1].PodSpec(); !ok || objs[1].Kind() != "Job" {
		t.Error("a Job's pod spec is not found")
	}
}
