package deploycheck

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/senders"
)

// TestChartMountsTheSenderRegistry: with a registry in the values, ingest
// and the dispatcher read it from a mounted ConfigMap file that parses as
// a valid registry, and the dispatcher gets every credential the registry
// refers to from a Secret; without one, nothing is mounted and the
// services use the built-in local registry.
func TestChartMountsTheSenderRegistry(t *testing.T) {
	objs := render(t, []string{"helm/wanotify/ci/production-values.yaml"})
	kinds := byKind(objs)
	var cmName string
	for name, cm := range kinds["ConfigMap"] {
		if strings.HasSuffix(name, "-senders") {
			cmName = name
			reg, err := senders.Parse([]byte(cm.Str("data", "senders.yaml")), name)
			if err != nil {
				t.Fatalf("the rendered registry does not parse: %v", err)
			}
			if _, ref := reg.Check(senders.Message{Tenant: "globex", Sender: "acme-otp", Text: true}); ref == nil {
				t.Error("the rendered registry lets globex send from acme's number")
			}
		}
	}
	if cmName == "" {
		t.Fatal("no sender registry ConfigMap rendered")
	}
	for _, svc := range []string{"ingest", "dispatcher"} {
		d, ok := kinds["Deployment"][deploymentName(kinds, svc)]
		if !ok {
			t.Fatalf("no %s Deployment", svc)
		}
		pod, _ := d.PodSpec()
		c := pod.List("containers")[0]
		env := containerEnv(t, c, kinds, svc)
		file := env[senders.EnvFile].value
		mounted := false
		for _, m := range c.List("volumeMounts") {
			if m.Str("name") == "senders" && strings.HasPrefix(file, m.Str("mountPath")+"/") && m.Get("readOnly") == true {
				mounted = true
			}
		}
		volume := false
		for _, v := range pod.List("volumes") {
			if v.Str("name") == "senders" && v.Str("configMap", "name") == cmName {
				volume = true
			}
		}
		if !mounted || !volume || !strings.HasSuffix(file, "/senders.yaml") {
			t.Errorf("%s: %s=%q, mounted %v, volume from %s %v", svc, senders.EnvFile, file, mounted, cmName, volume)
		}
		if svc == "dispatcher" {
			if src := env["GLOBEX_XPRESSBOT_API_KEY"]; src.kind != "secret" || src.from != "globex-xpressbot" {
				t.Errorf("dispatcher: GLOBEX_XPRESSBOT_API_KEY comes from %+v, want the Secret globex-xpressbot", src)
			}
		}
	}
	for _, o := range render(t, []string{"helm/wanotify/ci/simulator-values.yaml"}) {
		if o.Kind() == "ConfigMap" && strings.HasSuffix(o.Name(), "-senders") {
			t.Error("a registry ConfigMap is rendered without a registry")
		}
	}
}

func deploymentName(kinds map[string]map[string]Object, svc string) string {
	for name := range kinds["Deployment"] {
		if strings.HasSuffix(name, "-"+svc) {
			return name
		}
	}
	return ""
}
