package deploycheck

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestComposePublishesOnLoopback (issue 16, items 3 and 5): by default
// every published port binds the host's loopback, ingest and the webhook
// receiver included; their health checks and Prometheus use the admin
// ports, never the public ones.
func TestComposePublishesOnLoopback(t *testing.T) {
	c, _ := loadCompose(t)
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if got := ResolveDefaults(p); !strings.HasPrefix(got, "127.0.0.1:") {
				t.Errorf("service %s publishes %q (%q with no .env) beyond the host's loopback", name, p, got)
			}
		}
	}
	for name, admin := range map[string]string{"ingest": "9466", "webhook": "9467"} {
		s := c.Services[name]
		if got := s.Environment["WANOTIFY_ADMIN_ADDR"]; got != "0.0.0.0:"+admin {
			t.Errorf("%s: WANOTIFY_ADMIN_ADDR %q, want 0.0.0.0:%s", name, got, admin)
		}
		if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), ":"+admin+"/readyz") {
			t.Errorf("%s: the health check does not probe the admin port %s", name, admin)
		}
	}
	prom := string(repoFile(t, "deploy/prometheus/prometheus.yml"))
	for _, target := range []string{"ingest:9466", "webhook:9467"} {
		if !strings.Contains(prom, `"`+target+`"`) {
			t.Errorf("Prometheus does not scrape %s", target)
		}
	}
	for _, public := range []string{"ingest:8080", "webhook:8081"} {
		if strings.Contains(prom, public) {
			t.Errorf("Prometheus scrapes the public port %s", public)
		}
	}
}

// TestComposeGrafanaRefusesDefaultPassword (issue 16, item 5): Grafana's
// entrypoint, run as compose would run it, refuses an empty, `admin`, the
// example or a short password and starts Grafana with a real one.
func TestComposeGrafanaRefusesDefaultPassword(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the entrypoint with")
	}
	c, _ := loadCompose(t)
	g := c.Services["grafana"]
	if got := ResolveDefaults(g.Environment["GF_SECURITY_ADMIN_PASSWORD"]); got == "admin" {
		t.Fatal("Grafana's password defaults to admin")
	}
	if len(g.Entrypoint) < 3 || !strings.HasSuffix(g.Entrypoint[0], "sh") || g.Entrypoint[1] != "-c" {
		t.Fatalf("Grafana's entrypoint %q is not the checking shell script", g.Entrypoint)
	}
	// Compose turns $$ into $.
	script := strings.ReplaceAll(g.Entrypoint[2], "$$", "$")
	// /run.sh stands for Grafana: it must be reached only with a good
	// password.
	dir := t.TempDir()
	marker := dir + "/started"
	script = strings.ReplaceAll(script, "exec /run.sh", "exec "+sh+" -c 'touch "+marker+"'")
	for pw, wantStart := range map[string]bool{
		"": false, "admin": false, "change-me-grafana-password": false, "short": false,
		"a-password-of-our-own-4f1c": true,
	} {
		_ = os.Remove(marker)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, sh, "-c", script, "grafana")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "GF_SECURITY_ADMIN_PASSWORD=" + pw}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		_, statErr := os.Stat(marker)
		started := statErr == nil
		if started != wantStart {
			t.Errorf("password %q: Grafana started %v (err %v, %s), want %v", pw, started, err, stderr.String(), wantStart)
		}
		if !wantStart && (err == nil || !strings.Contains(stderr.String(), "GRAFANA_ADMIN_PASSWORD")) {
			t.Errorf("password %q: refused without naming GRAFANA_ADMIN_PASSWORD: %v %s", pw, err, stderr.String())
		}
	}
}

// TestComposeLeastPrivilege (issue 16, item 7): each Kafka client is a
// principal of its own with its own password variable, the sink's
// ClickHouse user manages no access, and ingest (and Grafana) read as the
// read-only user the mounted users.d file defines.
func TestComposeLeastPrivilege(t *testing.T) {
	c, _ := loadCompose(t)
	users, passwords := map[string]string{}, map[string]string{}
	for _, name := range []string{"topics", "ingest", "dispatcher", "webhook", "sink"} {
		env := c.Services[name].Environment
		u, p := ResolveDefaults(env["WANOTIFY_KAFKA_SASL_USERNAME"]), env["WANOTIFY_KAFKA_SASL_PASSWORD"]
		its := Interpolations(p)
		if u == "" || len(its) != 1 {
			t.Errorf("%s: Kafka user %q, password %q: want a user and a password variable of its own", name, u, p)
			continue
		}
		if other, dup := users[u]; dup {
			t.Errorf("%s and %s share the Kafka user %s", name, other, u)
		}
		if other, dup := passwords[its[0].Name]; dup {
			t.Errorf("%s and %s share the Kafka password variable %s", name, other, its[0].Name)
		}
		users[u], passwords[its[0].Name] = name, name
	}
	ch := c.Services["clickhouse"].Environment
	if ch["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] != "0" {
		t.Errorf("the sink's ClickHouse user has access management (CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=%q)", ch["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"])
	}
	sinkUser := ResolveDefaults(c.Services["sink"].Environment["WANOTIFY_CLICKHOUSE_USERNAME"])
	for _, name := range []string{"ingest", "grafana"} {
		env := c.Services[name].Environment
		u := ResolveDefaults(env["WANOTIFY_CLICKHOUSE_USERNAME"])
		if u != "wanotify_reader" || u == sinkUser {
			t.Errorf("%s reads ClickHouse as %q (the sink writes as %q), want wanotify_reader", name, u, sinkUser)
		}
		if its := Interpolations(env["WANOTIFY_CLICKHOUSE_PASSWORD"]); len(its) != 1 || its[0].Name != "CLICKHOUSE_READER_PASSWORD" {
			t.Errorf("%s's ClickHouse password is %q, want ${CLICKHOUSE_READER_PASSWORD}", name, env["WANOTIFY_CLICKHOUSE_PASSWORD"])
		}
	}
	mounted := false
	for _, v := range c.Services["clickhouse"].Volumes {
		if strings.HasPrefix(v, "./deploy/compose/clickhouse-users.xml:/etc/clickhouse-server/users.d/") {
			mounted = true
		}
	}
	if !mounted {
		t.Error("the read-only user's users.d file is not mounted into ClickHouse")
	}
	xml := string(repoFile(t, "deploy/compose/clickhouse-users.xml"))
	for _, want := range []string{"<wanotify_reader>", "<readonly>2</readonly>", `from_env="CLICKHOUSE_READER_PASSWORD"`, "GRANT SELECT ON wanotify.*"} {
		if !strings.Contains(xml, want) {
			t.Errorf("clickhouse-users.xml lacks %s", want)
		}
	}
	if regexp.MustCompile(`(?i)GRANT\s+(ALL|INSERT|ALTER|CREATE|DROP)`).MatchString(xml) {
		t.Error("the reader is granted more than SELECT")
	}
}
