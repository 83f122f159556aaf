package deploycheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Object is one Kubernetes object (or any YAML mapping) as decoded.
type Object map[string]any

// ParseManifests splits a multi-document YAML stream (helm template's
// output) into objects, skipping empty documents.
func ParseManifests(b []byte) ([]Object, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []Object
	for i := 0; ; i++ {
		var o Object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(o) > 0 {
			out = append(out, o)
		}
	}
}

// Kind and Name of the object.
func (o Object) Kind() string { return o.Str("kind") }

// Name is metadata.name.
func (o Object) Name() string { return o.Str("metadata", "name") }

// Get walks nested maps (string keys) and lists (integer keys as
// strings); nil when absent.
func (o Object) Get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case Object:
			cur = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// Str is Get as a string ("" when absent or not a scalar).
func (o Object) Str(path ...string) string {
	switch v := o.Get(path...).(type) {
	case string:
		return v
	case int, int64, float64, bool:
		return fmt.Sprint(v)
	}
	return ""
}

// Map is Get as a mapping (nil when absent).
func (o Object) Map(path ...string) Object {
	return asObject(o.Get(path...))
}

// asObject accepts both map types a decoder produces: yaml.v3 decodes
// nested mappings into the type of the outermost one.
func asObject(v any) Object {
	switch m := v.(type) {
	case map[string]any:
		return Object(m)
	case Object:
		return m
	}
	return nil
}

// List is Get as a list of mappings; other items are skipped.
func (o Object) List(path ...string) []Object {
	l, _ := o.Get(path...).([]any)
	out := make([]Object, 0, len(l))
	for _, it := range l {
		if m := asObject(it); m != nil {
			out = append(out, m)
		}
	}
	return out
}

// Strings is Get as a list of strings.
func (o Object) Strings(path ...string) []string {
	l, _ := o.Get(path...).([]any)
	out := make([]string, 0, len(l))
	for _, it := range l {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// PodSpec returns the pod template spec of a workload (Deployment,
// StatefulSet, DaemonSet, Job) and whether o is one.
func (o Object) PodSpec() (Object, bool) {
	switch o.Kind() {
	case "Deployment", "StatefulSet", "DaemonSet", "Job":
		return o.Map("spec", "template", "spec"), true
	case "CronJob":
		return o.Map("spec", "jobTemplate", "spec", "template", "spec"), true
	}
	return nil, false
}
