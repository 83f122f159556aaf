package deploycheck

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// internalPaths are what only the admin listeners serve.
var internalPaths = []string{"/metrics", "/healthz", "/readyz"}

// containerOf returns the first container of Deployment <fullname>-<svc>.
func containerOf(t *testing.T, kinds map[string]map[string]Object, svc string) (Object, bool) {
	t.Helper()
	d, ok := kinds["Deployment"]["wanotify-"+svc]
	if !ok {
		return nil, false
	}
	pod, _ := d.PodSpec()
	cs := pod.List("containers")
	if len(cs) == 0 {
		t.Fatalf("Deployment %s has no containers", d.Name())
	}
	return cs[0], true
}

func portsOf(c Object) map[string]int {
	out := map[string]int{}
	for _, p := range c.List("ports") {
		n, _ := p.Get("containerPort").(int)
		out[p.Str("name")] = n
	}
	return out
}

// TestChartKeepsInternalEndpointsInside (issue 16, item 3): the Ingresses
// route only the API paths, to the public port; ingest's and the
// receiver's probes, metrics and ServiceMonitors use an admin port of
// their own, which no Ingress reaches.
func TestChartKeepsInternalEndpointsInside(t *testing.T) {
	objs := render(t, []string{"helm/wanotify/ci/production-values.yaml"})
	kinds := byKind(objs)
	wantPaths := map[string]struct{ path, typ string }{
		"wanotify-ingest":  {"/v1/", "Prefix"},
		"wanotify-webhook": {"/v1/webhooks/whatsapp", "Exact"},
	}
	if len(kinds["Ingress"]) != 2 {
		t.Fatalf("%d Ingresses rendered, want ingest's and the receiver's", len(kinds["Ingress"]))
	}
	for name, ing := range kinds["Ingress"] {
		for _, rule := range ing.List("spec", "rules") {
			paths := rule.List("http", "paths")
			if len(paths) == 0 {
				t.Errorf("Ingress %s routes no path", name)
			}
			for _, p := range paths {
				path, typ := p.Str("path"), p.Str("pathType")
				if want := wantPaths[name]; path != want.path || typ != want.typ {
					t.Errorf("Ingress %s routes %s (%s), want only %s (%s)", name, path, typ, want.path, want.typ)
				}
				for _, internal := range internalPaths {
					if path == internal || typ == "Prefix" && strings.HasPrefix(internal, strings.TrimSuffix(path, "/")+"/") || path == "/" {
						t.Errorf("Ingress %s path %s (%s) reaches %s", name, path, typ, internal)
					}
				}
				if port := p.Str("backend", "service", "port", "name"); port != "http" {
					t.Errorf("Ingress %s routes to port %q, want the public port http", name, port)
				}
			}
		}
	}
	monitors := map[string]Object{}
	for _, m := range kinds["ServiceMonitor"] {
		monitors[m.Str("spec", "endpoints", "0", "relabelings", "0", "replacement")] = m
	}
	for svc, adminPort := range map[string]int{"ingest": 9466, "webhook": 9467} {
		c, ok := containerOf(t, kinds, svc)
		if !ok {
			t.Fatalf("no %s Deployment", svc)
		}
		ports := portsOf(c)
		if ports["admin"] != adminPort || ports["http"] == 0 || ports["http"] == ports["admin"] {
			t.Errorf("%s declares ports %v, want http and admin %d apart", svc, ports, adminPort)
		}
		for _, probe := range []string{"livenessProbe", "readinessProbe"} {
			if port := c.Str(probe, "httpGet", "port"); port != "admin" {
				t.Errorf("%s %s probes port %q, want admin", svc, probe, port)
			}
		}
		env := containerEnv(t, c, kinds, svc)
		if got := env["WANOTIFY_ADMIN_ADDR"].value; got != fmt.Sprintf("0.0.0.0:%d", adminPort) {
			t.Errorf("%s WANOTIFY_ADMIN_ADDR = %q, want 0.0.0.0:%d", svc, got, adminPort)
		}
		m, ok := monitors[svc]
		if !ok {
			t.Errorf("no ServiceMonitor for %s", svc)
		} else if port := m.Str("spec", "endpoints", "0", "port"); port != "admin" {
			t.Errorf("the ServiceMonitor of %s scrapes port %q, want admin", svc, port)
		}
		svcObj := kinds["Service"]["wanotify-"+svc]
		found := false
		for _, p := range svcObj.List("spec", "ports") {
			if p.Str("name") == "admin" && p.Str("targetPort") == "admin" {
				found = true
			}
		}
		if !found {
			t.Errorf("Service %s has no admin port for the ServiceMonitor", svcObj.Name())
		}
	}
}

// policiesFor returns the NetworkPolicies whose podSelector selects pods
// with labels.
func policiesFor(kinds map[string]map[string]Object, labels Object) []Object {
	var out []Object
	for _, np := range kinds["NetworkPolicy"] {
		sel := np.Map("spec", "podSelector", "matchLabels")
		ok := true
		for k, v := range sel {
			if labels.Str(k) != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			out = append(out, np)
		}
	}
	return out
}

// TestChartSafeDefaults (issue 16, item 5): the defaults deploy no
// simulator and refuse to guess a provider; when the simulator is on, its
// admin API needs a token from the Secret and its ledger is bounded; every
// pod is behind a default-deny NetworkPolicy whose exceptions are its own
// flows, with no admin port open to every source.
func TestChartSafeDefaults(t *testing.T) {
	root := repoRoot(t)
	_, err := helm(t).Template(ctxFor(t), "wanotify", filepath.Join(root, chartRel), nil)
	if err == nil || !strings.Contains(err.Error(), "dispatcher.xpressbot.baseURL is required") {
		t.Errorf("the bare defaults render (%v); they must ask for a provider target or the simulator", err)
	}
	objs := render(t, nil, "dispatcher.xpressbot.baseURL=https://xpressbot.example.net")
	kinds := byKind(objs)
	if _, ok := kinds["Deployment"]["wanotify-simulator"]; ok {
		t.Error("the defaults deploy the simulator")
	}
	checkPolicies(t, kinds)

	objs = render(t, []string{simulatorValues})
	kinds = byKind(objs)
	c, ok := containerOf(t, kinds, "simulator")
	if !ok {
		t.Fatal("simulator.enabled=true deploys no simulator")
	}
	env := containerEnv(t, c, kinds, "simulator")
	if env["WANOTIFY_SIM_ADMIN_TOKEN"].kind != "secret" {
		t.Errorf("the simulator's admin token comes from %q, want a Secret", env["WANOTIFY_SIM_ADMIN_TOKEN"].kind)
	}
	for _, e := range c.List("env") {
		if e.Str("name") == "WANOTIFY_SIM_ADMIN_TOKEN" && e.Get("valueFrom", "secretKeyRef", "optional") != false {
			t.Error("the simulator's admin token is optional: the pod would start without one")
		}
	}
	if n := atoiOr(env["WANOTIFY_SIM_LEDGER_MAX_ENTRIES"].value, 0); n <= 0 {
		t.Errorf("the simulator's ledger is unbounded (WANOTIFY_SIM_LEDGER_MAX_ENTRIES %q)", env["WANOTIFY_SIM_LEDGER_MAX_ENTRIES"].value)
	}
	checkPolicies(t, kinds)
	// Only the dispatchers reach the simulator.
	sim := kinds["Deployment"]["wanotify-simulator"].Map("spec", "template", "metadata", "labels")
	for _, np := range policiesFor(kinds, sim) {
		for _, rule := range np.List("spec", "ingress") {
			from := rule.List("from")
			if len(from) == 0 {
				t.Errorf("NetworkPolicy %s lets any source reach the simulator", np.Name())
			}
			for _, peer := range from {
				if peer.Str("podSelector", "matchLabels", "app.kubernetes.io/component") != "dispatcher" {
					t.Errorf("NetworkPolicy %s lets %v reach the simulator", np.Name(), peer)
				}
			}
		}
	}
}

// checkPolicies: a default-deny policy selects every Deployment's pods,
// and no rule opens an admin port to every source.
func checkPolicies(t *testing.T, kinds map[string]map[string]Object) {
	t.Helper()
	if len(kinds["NetworkPolicy"]) == 0 {
		t.Fatal("no NetworkPolicies rendered")
	}
	for name, d := range kinds["Deployment"] {
		labels := d.Map("spec", "template", "metadata", "labels")
		pols := policiesFor(kinds, labels)
		deny := false
		for _, np := range pols {
			if contains(np.Strings("spec", "policyTypes"), "Ingress") && len(np.List("spec", "ingress")) == 0 {
				deny = true
			}
		}
		if !deny {
			t.Errorf("Deployment %s: no default-deny NetworkPolicy selects its pods", name)
		}
		c := d.Map("spec", "template", "spec")
		var admin int
		for _, ct := range c.List("containers") {
			ports := portsOf(ct)
			admin = ports["admin"]
		}
		if admin == 0 {
			continue
		}
		for _, np := range pols {
			for _, rule := range np.List("spec", "ingress") {
				for _, p := range rule.List("ports") {
					if n, _ := p.Get("port").(int); n == admin && len(rule.List("from")) == 0 {
						t.Errorf("NetworkPolicy %s opens %s's admin port %d to every source", np.Name(), name, admin)
					}
				}
			}
		}
	}
}

// TestChartLeastPrivilege (issue 16, item 7): with SASL every service
// (and the topics job) is a Kafka principal of its own with its own
// password, and ingest reads ClickHouse as a user other than the sink's,
// with a password of its own.
func TestChartLeastPrivilege(t *testing.T) {
	objs := render(t, []string{simulatorValues}, "kafka.sasl.mechanism=SCRAM-SHA-512")
	kinds := byKind(objs)
	users, keys := map[string]string{}, map[string]string{}
	secretKey := func(c Object, name string) string {
		for _, e := range c.List("env") {
			if e.Str("name") == name {
				return e.Str("valueFrom", "secretKeyRef", "key")
			}
		}
		return ""
	}
	for _, svc := range []string{"ingest", "dispatcher", "webhook", "sink"} {
		c, ok := containerOf(t, kinds, svc)
		if !ok {
			t.Fatalf("no %s Deployment", svc)
		}
		env := containerEnv(t, c, kinds, svc)
		users[svc] = env["WANOTIFY_KAFKA_SASL_USERNAME"].value
		keys[svc] = secretKey(c, "WANOTIFY_KAFKA_SASL_PASSWORD")
	}
	job := kinds["Job"]["wanotify-setup"]
	pod, _ := job.PodSpec()
	jc := pod.List("containers")[0]
	for _, e := range jc.List("env") {
		if e.Str("name") == "WANOTIFY_KAFKA_SASL_USERNAME" {
			users["setup"] = e.Str("value")
		}
	}
	keys["setup"] = secretKey(jc, "WANOTIFY_KAFKA_SASL_PASSWORD")
	seenUser, seenKey := map[string]string{}, map[string]string{}
	for svc, u := range users {
		if u == "" || keys[svc] == "" {
			t.Errorf("%s: Kafka user %q, password key %q", svc, u, keys[svc])
			continue
		}
		if other, dup := seenUser[u]; dup {
			t.Errorf("%s and %s share the Kafka principal %s", svc, other, u)
		}
		if other, dup := seenKey[keys[svc]]; dup {
			t.Errorf("%s and %s share the Kafka password %s", svc, other, keys[svc])
		}
		seenUser[u], seenKey[keys[svc]] = svc, svc
	}
	if len(users) != 5 {
		t.Errorf("Kafka users of %d workloads, want 5 (four services and the topics job)", len(users))
	}
	ingest, _ := containerOf(t, kinds, "ingest")
	sink, _ := containerOf(t, kinds, "sink")
	iu := containerEnv(t, ingest, kinds, "ingest")["WANOTIFY_CLICKHOUSE_USERNAME"].value
	su := containerEnv(t, sink, kinds, "sink")["WANOTIFY_CLICKHOUSE_USERNAME"].value
	if iu == "" || iu == su || su == "default" {
		t.Errorf("ingest reads ClickHouse as %q, the sink writes as %q: want a read-only user of ingest's own, and no `default`", iu, su)
	}
	if ik, sk := secretKey(ingest, "WANOTIFY_CLICKHOUSE_PASSWORD"), secretKey(sink, "WANOTIFY_CLICKHOUSE_PASSWORD"); ik == "" || ik == sk {
		t.Errorf("ingest's ClickHouse password comes from key %q, the sink's from %q", ik, sk)
	}
}
