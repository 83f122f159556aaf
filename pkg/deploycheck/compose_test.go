package deploycheck

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wanotify/wanotify/pkg/topics"
)

// compose is the part of a Compose file the checks read.
type compose struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string                       `yaml:"image"`
	Build           *composeBuild                `yaml:"build"`
	Command         []string                     `yaml:"command"`
	Entrypoint      []string                     `yaml:"entrypoint"`
	Environment     map[string]string            `yaml:"environment"`
	Healthcheck     *composeHealth               `yaml:"healthcheck"`
	DependsOn       map[string]composeDependency `yaml:"depends_on"`
	Restart         string                       `yaml:"restart"`
	Profiles        []string                     `yaml:"profiles"`
	Volumes         []string                     `yaml:"volumes"`
	Ports           []string                     `yaml:"ports"`
	ReadOnly        bool                         `yaml:"read_only"`
	CapDrop         []string                     `yaml:"cap_drop"`
	SecurityOpt     []string                     `yaml:"security_opt"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context string            `yaml:"context"`
	Args    map[string]string `yaml:"args"`
}

type composeHealth struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

func loadCompose(t *testing.T) (compose, string) {
	t.Helper()
	raw := repoFile(t, "docker-compose.yml")
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(false)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c, string(raw)
}

// wanotifyServices are the compose services that run a wanotify image.
var wanotifyServices = map[string]string{ // compose service -> binary
	"topics": "notifyctl", "ingest": "ingest", "dispatcher": "dispatcher",
	"webhook": "webhook", "sink": "sink", "simulator": "simulator",
}

// longRunning are the wanotify services that serve health endpoints.
var longRunning = []string{"ingest", "dispatcher", "webhook", "sink", "simulator"}

func TestComposeServices(t *testing.T) {
	c, _ := loadCompose(t)
	want := map[string][]string{ // service -> profiles
		"kafka": nil, "clickhouse": nil, "topics": nil,
		"ingest": nil, "dispatcher": nil, "webhook": nil, "sink": nil,
		"simulator":      {"simulator"},
		"otel-collector": {"observability"}, "jaeger": {"observability"},
		"prometheus": {"observability"}, "grafana": {"observability"},
	}
	for name, profiles := range want {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		if !reflect.DeepEqual(s.Profiles, profiles) {
			t.Errorf("service %s: profiles %v, want %v", name, s.Profiles, profiles)
		}
	}
	for name := range c.Services {
		if _, ok := want[name]; !ok {
			t.Errorf("service %s is not one the checks know; add it to TestComposeServices", name)
		}
	}

	if img := c.Services["kafka"].Image; !strings.HasPrefix(img, "apache/kafka:") {
		t.Errorf("kafka runs %q, want the official apache/kafka image", img)
	}
	kenv := c.Services["kafka"].Environment
	if !strings.Contains(kenv["KAFKA_PROCESS_ROLES"], "controller") || kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "" {
		t.Errorf("kafka is not in KRaft mode (process roles %q)", kenv["KAFKA_PROCESS_ROLES"])
	}
	for k := range kenv {
		if strings.Contains(strings.ToUpper(k), "ZOOKEEPER") {
			t.Errorf("kafka is configured for ZooKeeper (%s)", k)
		}
	}
	if img := c.Services["clickhouse"].Image; !strings.HasPrefix(img, "clickhouse/clickhouse-server:") {
		t.Errorf("clickhouse runs %q, want the official clickhouse/clickhouse-server image", img)
	}
}

var versionTag = regexp.MustCompile(`^[^:@\s]+(:[A-Za-z0-9._-]*[0-9][A-Za-z0-9._-]*)(@sha256:[a-f0-9]{64})?$`)

func TestComposeImagesArePinned(t *testing.T) {
	c, _ := loadCompose(t)
	for name, s := range c.Services {
		img := ResolveDefaults(s.Image)
		m := versionTag.FindStringSubmatch(img)
		if m == nil || strings.Contains(m[1], "latest") {
			t.Errorf("service %s: image %q (as resolved with no environment: %q) is not pinned to a version", name, s.Image, img)
		}
		bin, ours := wanotifyServices[name]
		if !ours {
			continue
		}
		if s.Build == nil || s.Build.Context != "." || s.Build.Args["SERVICE"] != bin {
			t.Errorf("service %s: not built from the repository's Dockerfile with SERVICE=%s", name, bin)
		}
		if !strings.HasSuffix(strings.SplitN(img, ":", 2)[0], "-"+bin) {
			t.Errorf("service %s: image %q is not named <prefix>-%s", name, img, bin)
		}
	}
}

// awaitingDigest are third-party images whose digest could not be looked
// up when they were pinned (no registry reachable); they are pinned to an
// exact version until then. Every other third-party image is pinned by
// digest.
var awaitingDigest = map[string]bool{
	"clickhouse/clickhouse-server:26.8.2.7":        true,
	"otel/opentelemetry-collector-contrib:0.131.0": true,
	"jaegertracing/jaeger:2.14.1":                  true,
}

// TestComposeThirdPartyImagesByDigest (issue 16, item 5): images we do
// not build are pinned by digest, and Grafana's ClickHouse plugin by
// version.
func TestComposeThirdPartyImagesByDigest(t *testing.T) {
	c, _ := loadCompose(t)
	digest := regexp.MustCompile(`@sha256:[a-f0-9]{64}$`)
	pinned := 0
	for name, s := range c.Services {
		if _, ours := wanotifyServices[name]; ours || name == "topics" {
			continue
		}
		img := ResolveDefaults(s.Image)
		if digest.MatchString(img) {
			pinned++
			continue
		}
		if !awaitingDigest[img] {
			t.Errorf("service %s: image %q is not pinned by digest", name, img)
		}
	}
	if pinned < 3 {
		t.Errorf("only %d third-party images pinned by digest", pinned)
	}
	g := c.Services["grafana"].Environment
	if !regexp.MustCompile(`^grafana-clickhouse-datasource@\d+\.\d+\.\d+$`).MatchString(g["GF_PLUGINS_PREINSTALL_SYNC"]) || g["GF_INSTALL_PLUGINS"] != "" {
		t.Errorf("Grafana's ClickHouse plugin is not pinned to a version: GF_PLUGINS_PREINSTALL_SYNC=%q GF_INSTALL_PLUGINS=%q",
			g["GF_PLUGINS_PREINSTALL_SYNC"], g["GF_INSTALL_PLUGINS"])
	}
}

func TestComposeHealthAndOrder(t *testing.T) {
	c, _ := loadCompose(t)
	for _, name := range []string{"kafka", "clickhouse"} {
		if h := c.Services[name].Healthcheck; h == nil || len(h.Test) < 2 {
			t.Errorf("%s has no health check", name)
		}
	}
	if d := c.Services["topics"].DependsOn["kafka"]; d.Condition != "service_healthy" {
		t.Errorf("topics depends on kafka with condition %q, want service_healthy", d.Condition)
	}
	if r := c.Services["topics"].Restart; r != "no" {
		t.Errorf("the one-shot topics job has restart %q, want \"no\"", r)
	}
	if got := c.Services["topics"].Command; len(got) < 4 || got[0] != "topics" || got[1] != "apply" || got[2] != "--file" {
		t.Errorf("topics job runs %v, want topics apply --file ...", got)
	}
	for _, name := range longRunning {
		s := c.Services[name]
		if s.Restart != "unless-stopped" && s.Restart != "always" {
			t.Errorf("%s: restart %q, want unless-stopped or always", name, s.Restart)
		}
		h := s.Healthcheck
		if h == nil || len(h.Test) != 3 || h.Test[0] != "CMD" || h.Test[1] != "/usr/local/bin/healthcheck" {
			t.Errorf("%s: health check %+v does not run /usr/local/bin/healthcheck (the images have no shell)", name, h)
			continue
		}
		path := "/readyz"
		if name == "simulator" {
			path = "/healthz"
		}
		addr := probeAddr(s.Environment)
		_, port, _ := strings.Cut(addr, ":")
		if want := "http://127.0.0.1:" + port + path; h.Test[2] != want {
			t.Errorf("%s: health check probes %s, want %s (the service listens on %s)", name, h.Test[2], want, addr)
		}
		for _, d := range []string{h.Interval, h.Timeout} {
			if _, err := time.ParseDuration(d); err != nil {
				t.Errorf("%s: health check timing %q: %v", name, d, err)
			}
		}
		if !s.ReadOnly || !contains(s.CapDrop, "ALL") || !contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: not read-only with all capabilities dropped and no-new-privileges", name)
		}
		if name == "simulator" {
			if d := s.DependsOn["webhook"]; d.Condition != "service_healthy" {
				t.Errorf("simulator depends on webhook with %q, want service_healthy", d.Condition)
			}
			continue
		}
		if d := s.DependsOn["topics"]; d.Condition != "service_completed_successfully" {
			t.Errorf("%s depends on topics with %q, want service_completed_successfully", name, d.Condition)
		}
		grace, err1 := time.ParseDuration(s.Environment["WANOTIFY_SHUTDOWN_READINESS_GRACE"])
		drain, err2 := time.ParseDuration(s.Environment["WANOTIFY_SHUTDOWN_TIMEOUT"])
		stop, err3 := time.ParseDuration(s.StopGracePeriod)
		if err1 != nil || err2 != nil || err3 != nil || stop <= grace+drain {
			t.Errorf("%s: stop_grace_period %q must exceed readiness grace %q + drain %q", name, s.StopGracePeriod,
				s.Environment["WANOTIFY_SHUTDOWN_READINESS_GRACE"], s.Environment["WANOTIFY_SHUTDOWN_TIMEOUT"])
		}
	}
	if d := c.Services["sink"].DependsOn["clickhouse"]; d.Condition != "service_healthy" {
		t.Errorf("sink depends on clickhouse with %q, want service_healthy", d.Condition)
	}
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which does not exist", name, dep)
			}
		}
	}
}

// probeAddr is where a service serves /readyz and /metrics: its admin
// address when it has one, else its listen address.
func probeAddr(env map[string]string) string {
	if a := env["WANOTIFY_ADMIN_ADDR"]; a != "" {
		return a
	}
	return listenAddr(env)
}

// listenAddr is the value of the service's listen-address variable.
func listenAddr(env map[string]string) string {
	for _, v := range listenVars {
		if a, ok := env[v]; ok && a != "" {
			return a
		}
	}
	return ""
}

// TestComposeEnvironment: every variable a wanotify service is given is one
// it reads, secrets are never written into the file, listen addresses are
// on every interface, and every name is in the README's configuration
// table when it has one.
func TestComposeEnvironment(t *testing.T) {
	c, raw := loadCompose(t)
	vars := serviceVars(t)
	union := unionVars(t)
	readme, err := ReadmeVars(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if readme == nil {
		t.Log("README.md has no configuration table yet: compared with the services' own tables only")
	}
	for name, bin := range wanotifyServices {
		s, ok := c.Services[name]
		if !ok {
			continue
		}
		reads := vars[bin]
		for k, v := range s.Environment {
			if !strings.HasPrefix(k, "WANOTIFY_") {
				t.Errorf("%s: variable %s is not a wanotify variable", name, k)
				continue
			}
			rv, ok := reads[k]
			if !ok {
				t.Errorf("%s: sets %s, which %s does not read", name, k, bin)
				continue
			}
			if readme != nil {
				if _, ok := readme[k]; !ok {
					t.Errorf("%s: %s is not in README.md's configuration table", name, k)
				}
			}
			if rv.Secret {
				its := Interpolations(v)
				if len(its) != 1 || strings.TrimSpace(interpolation.ReplaceAllString(v, "")) != "" || its[0].Default != "" {
					t.Errorf("%s: secret %s must come from the environment (.env) with no default in the file, got %q", name, k, v)
				}
			}
		}
		for _, lv := range listenVars {
			if a, ok := s.Environment[lv]; ok && !strings.HasPrefix(ResolveDefaults(a), "0.0.0.0:") {
				t.Errorf("%s: %s=%q does not listen on every interface of the container", name, lv, a)
			}
		}
	}
	// Every ${WANOTIFY_*} the file interpolates is a real variable, apart
	// from the two naming the images.
	for _, it := range Interpolations(raw) {
		if !strings.HasPrefix(it.Name, "WANOTIFY_") || it.Name == "WANOTIFY_IMAGE" || it.Name == "WANOTIFY_TAG" {
			continue
		}
		if _, ok := union[it.Name]; !ok {
			t.Errorf("docker-compose.yml interpolates ${%s}, which no service reads", it.Name)
		}
	}
	d := c.Services["dispatcher"].Environment
	if d["WANOTIFY_DISPATCHER_TRANSACTIONAL_ID"] == "" {
		t.Error("dispatcher: no fixed WANOTIFY_DISPATCHER_TRANSACTIONAL_ID; the container's random host name would change it on every re-creation")
	}
	webhookPath := vars["webhook"]["WANOTIFY_WEBHOOK_PATH"].Default
	if got := c.Services["simulator"].Environment["WANOTIFY_SIM_WEBHOOK_URL"]; webhookPath == "" || !strings.HasSuffix(got, ":8081"+webhookPath) {
		t.Errorf("simulator posts webhooks to %q, want the receiver's %s on port 8081", got, webhookPath)
	}
	if got := ResolveDefaults(d["WANOTIFY_XPRESSBOT_BASE_URL"]); got != "http://simulator:8090" {
		t.Errorf("dispatcher sends to %q by default, want the simulator", got)
	}
	if sk, dk := c.Services["simulator"].Environment["WANOTIFY_SIM_API_KEY"], d["WANOTIFY_XPRESSBOT_API_KEY"]; Interpolations(sk)[0].Name != Interpolations(dk)[0].Name {
		t.Errorf("simulator key %q and dispatcher key %q come from different variables", sk, dk)
	}
}

// TestComposeExampleEnv: every variable the example .env sets or mentions
// is real, and it sets every variable the compose file requires.
func TestComposeExampleEnv(t *testing.T) {
	_, raw := loadCompose(t)
	union := unionVars(t)
	example := string(repoFile(t, "deploy/compose/example.env"))
	set := map[string]bool{}
	for _, line := range strings.Split(example, "\n") {
		line = strings.TrimSpace(line)
		mentioned := strings.TrimSpace(strings.TrimPrefix(line, "#"))
		k, _, ok := strings.Cut(mentioned, "=")
		if !ok {
			continue
		}
		if regexp.MustCompile(`^WANOTIFY_[A-Z0-9_]+$`).MatchString(k) {
			if _, known := union[k]; !known && k != "WANOTIFY_IMAGE" && k != "WANOTIFY_TAG" {
				t.Errorf("example.env names %s, which no service reads", k)
			}
		}
		// Compose-only variables (CLICKHOUSE_READER_PASSWORD, ...) count too.
		if regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`).MatchString(k) && !strings.HasPrefix(line, "#") {
			set[k] = true
		}
	}
	for _, it := range Interpolations(raw) {
		if it.Required && !set[it.Name] {
			t.Errorf("docker-compose.yml requires ${%s}, which example.env does not set", it.Name)
		}
	}
}

func TestComposeMountsExist(t *testing.T) {
	c, _ := loadCompose(t)
	root := repoRoot(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if !strings.HasPrefix(src, "./") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s mounts volume %q, which is not declared", name, src)
				}
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(src))); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
		}
	}
	// Grafana loads dashboards from where compose mounts them.
	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/grafana/provisioning/dashboards/wanotify.yaml"), &provider); err != nil || len(provider.Providers) != 1 {
		t.Fatalf("grafana dashboard provider: %v", err)
	}
	mount := ""
	for _, v := range c.Services["grafana"].Volumes {
		if strings.HasPrefix(v, "./deploy/grafana/dashboards:") {
			mount = strings.Split(v, ":")[1]
		}
	}
	if mount == "" || mount != provider.Providers[0].Options.Path {
		t.Errorf("grafana mounts the dashboards at %q but loads them from %q", mount, provider.Providers[0].Options.Path)
	}
}

// TestComposeTopicsMatch: the single-broker topics file differs from
// topics.yaml only where one broker forces it.
func TestComposeTopicsMatch(t *testing.T) {
	root := repoRoot(t)
	want, err := topics.Load(filepath.Join(root, "topics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := topics.Load(filepath.Join(root, "deploy", "compose", "topics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != len(want.Topics) {
		t.Fatalf("deploy/compose/topics.yaml has %d topics, topics.yaml %d", len(got.Topics), len(want.Topics))
	}
	for i, w := range want.Topics {
		g := got.Topics[i]
		if g.Name != w.Name || g.Partitions != w.Partitions {
			t.Errorf("topic %d: %s/%d partitions, want %s/%d", i, g.Name, g.Partitions, w.Name, w.Partitions)
		}
		if g.ReplicationFactor != 1 {
			t.Errorf("%s: replication factor %d on one broker", g.Name, g.ReplicationFactor)
		}
		for k, v := range w.Configs {
			if k == "min.insync.replicas" {
				if g.Configs[k] != "1" {
					t.Errorf("%s: min.insync.replicas %q; one broker needs 1", g.Name, g.Configs[k])
				}
				continue
			}
			if g.Configs[k] != v {
				t.Errorf("%s: %s=%q, topics.yaml has %q", g.Name, k, g.Configs[k], v)
			}
		}
		for k := range g.Configs {
			if _, ok := w.Configs[k]; !ok {
				t.Errorf("%s: %s is set only in deploy/compose/topics.yaml", g.Name, k)
			}
		}
	}
}

// TestComposePrometheusScrapesEveryService: each long-running service's
// metrics port is scraped with its service label.
func TestComposePrometheusScrapesEveryService(t *testing.T) {
	c, _ := loadCompose(t)
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/prometheus/prometheus.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = st.Labels["service"]
			}
		}
	}
	for _, name := range []string{"ingest", "dispatcher", "webhook", "sink"} {
		_, port, _ := strings.Cut(probeAddr(c.Services[name].Environment), ":")
		if got, ok := targets[name+":"+port]; !ok || got != name {
			t.Errorf("prometheus does not scrape %s:%s with service=%s (targets %v)", name, port, name, targets)
		}
	}
	if !contains(cfg.RuleFiles, "/etc/prometheus/alerts.yml") {
		t.Errorf("prometheus does not load alerts.yml: %v", cfg.RuleFiles)
	}
	var alerts struct {
		Groups []any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/prometheus/alerts.yml"), &alerts); err != nil {
		t.Errorf("deploy/prometheus/alerts.yml: %v", err)
	}
}
