package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/topics"
)

const chartRel = "helm/wanotify"

// simulatorValues tries the chart with the simulator on.
const simulatorValues = "helm/wanotify/ci/simulator-values.yaml"

// valuesVariants are the configurations every manifest check runs on.
var valuesVariants = []struct {
	name  string
	files []string
	set   []string
}{
	// The defaults need a provider target; this is the documented way to
	// try the chart (the simulator on).
	{name: "simulator", files: []string{simulatorValues}},
	{name: "production", files: []string{"helm/wanotify/ci/production-values.yaml"}},
	// The other provider, the chart-managed Secret with SASL and TLS, and
	// the simulator off.
	{name: "cloudapi", set: []string{
		"dispatcher.provider=cloudapi", "dispatcher.cloudapi.phoneNumberID=1234567890",
		"simulator.enabled=false", "kafka.sasl.mechanism=PLAIN",
		"kafka.tls.enabled=true", "kafka.tls.secretName=kafka-ca", "kafka.tls.certKey=tls.crt", "kafka.tls.keyKey=tls.key",
		"clickhouse.tls.enabled=true", "clickhouse.tls.secretName=ch-ca",
		"dispatcher.autoscaling.enabled=false", "dispatcher.replicas=12",
	}},
}

func (v valuesFiles) abs(root string) []string {
	out := make([]string, len(v))
	for i, f := range v {
		out[i] = filepath.Join(root, filepath.FromSlash(f))
	}
	return out
}

type valuesFiles []string

func render(t *testing.T, files []string, set ...string) []Object {
	t.Helper()
	root := repoRoot(t)
	out, err := helm(t).Template(ctxFor(t), "wanotify", filepath.Join(root, chartRel), valuesFiles(files).abs(root), set...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseManifests(out)
	if err != nil {
		t.Fatalf("helm template output is not YAML: %v", err)
	}
	if len(objs) == 0 {
		t.Fatal("helm template rendered nothing")
	}
	return objs
}

func TestChartLints(t *testing.T) {
	root := repoRoot(t)
	h := helm(t)
	for _, v := range [][]string{{simulatorValues}, {"helm/wanotify/ci/production-values.yaml"}} {
		out, err := h.Lint(ctxFor(t), filepath.Join(root, chartRel), valuesFiles(v).abs(root)...)
		if err != nil {
			t.Errorf("helm lint %v: %v\n%s", v, err, out)
		}
	}
}

func TestRenderedManifests(t *testing.T) {
	vars := serviceVars(t)
	valuesText := string(repoFile(t, chartRel+"/values.yaml"))
	readme, err := ReadmeVars(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range valuesVariants {
		t.Run(v.name, func(t *testing.T) {
			objs := render(t, v.files, v.set...)
			checkWorkloads(t, objs)
			checkEnv(t, objs, vars, readme, valuesText)
			checkServicesAndBudgets(t, objs)
			checkAutoscaler(t, objs)
			checkSetupJob(t, objs)
		})
	}
}

// byKind indexes objects by kind and name.
func byKind(objs []Object) map[string]map[string]Object {
	out := map[string]map[string]Object{}
	for _, o := range objs {
		if out[o.Kind()] == nil {
			out[o.Kind()] = map[string]Object{}
		}
		out[o.Kind()][o.Name()] = o
	}
	return out
}

// checkWorkloads: every container of every workload has resources and a
// non-root, read-only, unprivileged security context; every long-running
// container has liveness and readiness probes on a port it declares.
func checkWorkloads(t *testing.T, objs []Object) {
	t.Helper()
	workloads := 0
	for _, o := range objs {
		pod, ok := o.PodSpec()
		if !ok {
			continue
		}
		workloads++
		where := o.Kind() + "/" + o.Name()
		psc := pod.Map("securityContext")
		if psc.Get("runAsNonRoot") != true {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
		}
		if uid, ok := psc.Get("runAsUser").(int); !ok || uid == 0 {
			t.Errorf("%s: pod securityContext.runAsUser = %v, want a non-zero user", where, psc.Get("runAsUser"))
		}
		if pod.Str("securityContext", "seccompProfile", "type") != "RuntimeDefault" {
			t.Errorf("%s: no RuntimeDefault seccomp profile", where)
		}
		if pod.Get("automountServiceAccountToken") != false {
			t.Errorf("%s: the service account token is mounted; the services never call the API", where)
		}
		if pod.Get("enableServiceLinks") != false {
			t.Errorf("%s: enableServiceLinks is not false: service links add *_PORT variables to the environment", where)
		}
		mounts := map[string]bool{}
		for _, vol := range pod.List("volumes") {
			mounts[vol.Str("name")] = true
		}
		containers := append(pod.List("initContainers"), pod.List("containers")...)
		if len(containers) == 0 {
			t.Errorf("%s: no containers", where)
		}
		for _, c := range containers {
			cw := where + " container " + c.Str("name")
			for _, q := range [][]string{{"requests", "cpu"}, {"requests", "memory"}, {"limits", "memory"}} {
				if c.Str(append([]string{"resources"}, q...)...) == "" {
					t.Errorf("%s: no resources.%s", cw, strings.Join(q, "."))
				}
			}
			sc := c.Map("securityContext")
			if sc.Get("runAsNonRoot") != true {
				t.Errorf("%s: securityContext.runAsNonRoot is not true", cw)
			}
			if sc.Get("allowPrivilegeEscalation") != false {
				t.Errorf("%s: securityContext.allowPrivilegeEscalation is not false", cw)
			}
			if sc.Get("readOnlyRootFilesystem") != true {
				t.Errorf("%s: securityContext.readOnlyRootFilesystem is not true", cw)
			}
			if sc.Get("privileged") == true {
				t.Errorf("%s: privileged", cw)
			}
			if !contains(sc.Strings("capabilities", "drop"), "ALL") {
				t.Errorf("%s: capabilities do not drop ALL", cw)
			}
			if img := c.Str("image"); img == "" || strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") && !strings.Contains(img, "@sha256:") {
				t.Errorf("%s: image %q is not pinned to a version", cw, img)
			}
			for _, m := range c.List("volumeMounts") {
				if !mounts[m.Str("name")] {
					t.Errorf("%s: mounts volume %q the pod does not have", cw, m.Str("name"))
				}
			}
			if o.Kind() == "Job" {
				continue
			}
			ports := map[string]int{}
			for _, p := range c.List("ports") {
				ports[p.Str("name")], _ = p.Get("containerPort").(int)
			}
			for _, probe := range []string{"livenessProbe", "readinessProbe"} {
				pr := c.Map(probe)
				if pr == nil {
					t.Errorf("%s: no %s", cw, probe)
					continue
				}
				port := pr.Str("httpGet", "port")
				if _, ok := ports[port]; !ok {
					t.Errorf("%s: %s probes port %q, which the container does not declare (%v)", cw, probe, port, ports)
				}
				path := pr.Str("httpGet", "path")
				want := map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"}[probe]
				if path != want && path != "/healthz" {
					t.Errorf("%s: %s path %q, want %s", cw, probe, path, want)
				}
			}
		}
	}
	if workloads == 0 {
		t.Fatal("no workloads rendered")
	}
}

// source is where a container's variable comes from.
type source struct {
	kind  string // "value", "configmap", "secret", "field"
	value string // value or ConfigMap value
	from  string // ConfigMap or Secret name
}

// containerEnv resolves a container's environment: env entries win over
// envFrom, and a later envFrom source over an earlier one.
func containerEnv(t *testing.T, c Object, kinds map[string]map[string]Object, where string) map[string]source {
	t.Helper()
	env := map[string]source{}
	for _, ef := range c.List("envFrom") {
		switch {
		case ef.Map("configMapRef") != nil:
			name := ef.Str("configMapRef", "name")
			cm, ok := kinds["ConfigMap"][name]
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not rendered", where, name)
				continue
			}
			for k, v := range cm.Map("data") {
				env[k] = source{kind: "configmap", value: fmt.Sprint(v), from: name}
			}
		case ef.Map("secretRef") != nil:
			t.Errorf("%s: envFrom a whole Secret (%s) hands every secret to the container; use secretKeyRef per variable", where, ef.Str("secretRef", "name"))
		}
	}
	for _, e := range c.List("env") {
		name := e.Str("name")
		switch {
		case e.Map("valueFrom", "secretKeyRef") != nil:
			env[name] = source{kind: "secret", from: e.Str("valueFrom", "secretKeyRef", "name")}
		case e.Map("valueFrom", "fieldRef") != nil, e.Map("valueFrom", "resourceFieldRef") != nil:
			env[name] = source{kind: "field"}
		case e.Map("valueFrom", "configMapKeyRef") != nil:
			env[name] = source{kind: "configmap", from: e.Str("valueFrom", "configMapKeyRef", "name")}
		default:
			env[name] = source{kind: "value", value: e.Str("value")}
		}
	}
	return env
}

// serviceOf names the wanotify service a container runs, from its image
// (<repository>-<service>:<tag>).
var imageService = regexp.MustCompile(`-([a-z]+)(?::[^/@]+|@sha256:[a-f0-9]+)$`)

func serviceOf(c Object) string {
	m := imageService.FindStringSubmatch(c.Str("image"))
	if m == nil {
		return ""
	}
	return m[1]
}

// checkEnv: every WANOTIFY_* variable set in a container is one its service
// reads (and is in README.md's configuration table, once it has one); secrets come only from Secrets (a Secret may also hold what is
// merely sensitive, like the ingest key hashes); every variable the service reads
// is set or documented in values.yaml; variables whose default is a
// loopback address are set; listen addresses match the declared ports.
func checkEnv(t *testing.T, objs []Object, vars map[string]VarSet, readme VarSet, valuesText string) {
	t.Helper()
	kinds := byKind(objs)
	seen := map[string]bool{}
	for _, o := range objs {
		pod, ok := o.PodSpec()
		if !ok {
			continue
		}
		for _, c := range append(pod.List("initContainers"), pod.List("containers")...) {
			svc := serviceOf(c)
			where := fmt.Sprintf("%s/%s container %s (%s)", o.Kind(), o.Name(), c.Str("name"), svc)
			reads, ok := vars[svc]
			if !ok {
				t.Errorf("%s: image %q is not one of the production services %v", where, c.Str("image"), Production)
				continue
			}
			seen[svc] = true
			env := containerEnv(t, c, kinds, where)
			for name, src := range env {
				if !strings.HasPrefix(name, "WANOTIFY_") {
					continue
				}
				v, ok := reads[name]
				if !ok {
					t.Errorf("%s: sets %s, which %s does not read", where, name, svc)
					continue
				}
				if _, ok := readme[name]; readme != nil && !ok {
					t.Errorf("%s: %s is not in README.md's configuration table", where, name)
				}
				if v.Secret && src.kind != "secret" {
					t.Errorf("%s: secret %s comes from a %s, not a Secret", where, name, src.kind)
				}
			}
			provider := env["WANOTIFY_PROVIDER"].value
			for _, name := range reads.Names() {
				v := reads[name]
				_, set := env[name]
				if set {
					continue
				}
				if isLoopback(v.Default) && !(provider == "cloudapi" && strings.HasPrefix(name, "WANOTIFY_XPRESSBOT_")) {
					t.Errorf("%s: %s is not set, and its default %q is a loopback address that does not work in a pod", where, name, v.Default)
				}
				if !regexp.MustCompile(`\b` + name + `\b`).MatchString(valuesText) {
					t.Errorf("%s: %s (read by %s) is neither set nor documented in values.yaml", where, name, svc)
				}
			}
			if o.Kind() == "Job" {
				continue
			}
			checkListenAddr(t, c, env, where)
			checkShutdown(t, pod, env, where)
			if svc == "dispatcher" && env["WANOTIFY_DISPATCHER_TRANSACTIONAL_ID"].kind != "field" {
				t.Errorf("%s: WANOTIFY_DISPATCHER_TRANSACTIONAL_ID does not come from the pod name", where)
			}
		}
	}
	for _, want := range []string{"ingest", "dispatcher", "webhook", "sink", "notifyctl"} {
		if !seen[want] {
			t.Errorf("no container runs %s", want)
		}
	}
}

func isLoopback(def string) bool {
	return strings.Contains(def, "127.0.0.1") || strings.Contains(def, "localhost") || strings.Contains(def, "[::1]")
}

// listenVars are the variables that set where a service listens.
var listenVars = []string{"WANOTIFY_INGEST_ADDR", "WANOTIFY_WEBHOOK_ADDR", "WANOTIFY_ADMIN_ADDR", "WANOTIFY_SIM_ADDR"}

func checkListenAddr(t *testing.T, c Object, env map[string]source, where string) {
	t.Helper()
	ports := map[int]bool{}
	for _, p := range c.List("ports") {
		if n, ok := p.Get("containerPort").(int); ok {
			ports[n] = true
		}
	}
	found := false
	for _, name := range listenVars {
		src, ok := env[name]
		if !ok || src.value == "" {
			continue
		}
		found = true
		host, port, ok := strings.Cut(src.value, ":")
		n, err := strconv.Atoi(port)
		if !ok || err != nil {
			t.Errorf("%s: %s=%q is not host:port", where, name, src.value)
			continue
		}
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s: %s=%q listens on %s only; kubelet probes and Services need every interface", where, name, src.value, host)
		}
		if !ports[n] {
			t.Errorf("%s: %s listens on %d, which the container does not declare", where, name, n)
		}
	}
	if !found {
		t.Errorf("%s: sets none of %v", where, listenVars)
	}
}

func checkShutdown(t *testing.T, pod Object, env map[string]source, where string) {
	t.Helper()
	if _, ok := env["WANOTIFY_SHUTDOWN_TIMEOUT"]; !ok {
		return // the simulator has its own fixed drain
	}
	grace, err1 := time.ParseDuration(env["WANOTIFY_SHUTDOWN_READINESS_GRACE"].value)
	drain, err2 := time.ParseDuration(env["WANOTIFY_SHUTDOWN_TIMEOUT"].value)
	if err1 != nil || err2 != nil {
		t.Errorf("%s: shutdown durations not parseable: %v %v", where, err1, err2)
		return
	}
	if grace <= 0 {
		t.Errorf("%s: WANOTIFY_SHUTDOWN_READINESS_GRACE is %v: endpoints keep sending work to a stopping pod", where, grace)
	}
	tgp, _ := pod.Get("terminationGracePeriodSeconds").(int)
	if time.Duration(tgp)*time.Second <= grace+drain {
		t.Errorf("%s: terminationGracePeriodSeconds %d does not exceed readiness grace %v + drain %v", where, tgp, grace, drain)
	}
}

// checkServicesAndBudgets: Services and PodDisruptionBudgets select the
// pods of a Deployment, Services target declared ports, and every
// Deployment that runs more than one pod has a budget.
func checkServicesAndBudgets(t *testing.T, objs []Object) {
	t.Helper()
	kinds := byKind(objs)
	matches := func(sel Object) (Object, bool) {
		for _, d := range kinds["Deployment"] {
			labels := d.Map("spec", "template", "metadata", "labels")
			ok := len(sel) > 0
			for k, v := range sel {
				if labels.Str(k) != fmt.Sprint(v) {
					ok = false
				}
			}
			if ok {
				return d, true
			}
		}
		return nil, false
	}
	for name, s := range kinds["Service"] {
		d, ok := matches(s.Map("spec", "selector"))
		if !ok {
			t.Errorf("Service %s selects no Deployment's pods", name)
			continue
		}
		pod, _ := d.PodSpec()
		declared := map[string]bool{}
		for _, c := range pod.List("containers") {
			for _, p := range c.List("ports") {
				declared[p.Str("name")] = true
			}
		}
		for _, p := range s.List("spec", "ports") {
			if !declared[p.Str("targetPort")] {
				t.Errorf("Service %s targets port %q, which Deployment %s does not declare", name, p.Str("targetPort"), d.Name())
			}
		}
	}
	budgeted := map[string]bool{}
	for name, p := range kinds["PodDisruptionBudget"] {
		d, ok := matches(p.Map("spec", "selector", "matchLabels"))
		if !ok {
			t.Errorf("PodDisruptionBudget %s selects no Deployment's pods", name)
			continue
		}
		budgeted[d.Name()] = true
	}
	scaled := map[string]bool{}
	for _, h := range kinds["HorizontalPodAutoscaler"] {
		scaled[h.Str("spec", "scaleTargetRef", "name")] = true
	}
	for name, d := range kinds["Deployment"] {
		replicas, _ := d.Get("spec", "replicas").(int)
		if (replicas > 1 || scaled[name]) && !budgeted[name] {
			t.Errorf("Deployment %s runs several pods without a PodDisruptionBudget", name)
		}
	}
}

// partitions is the partition count of notifications.requested in
// topics.yaml.
func partitions(t *testing.T) int {
	t.Helper()
	f, err := topics.Load(filepath.Join(repoRoot(t), "topics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range f.Topics {
		if tp.Name == topics.Requested {
			return int(tp.Partitions)
		}
	}
	t.Fatalf("topics.yaml has no %s", topics.Requested)
	return 0
}

// checkAutoscaler: the dispatcher's replicas (fixed or autoscaled) never
// exceed the partition count.
func checkAutoscaler(t *testing.T, objs []Object) {
	t.Helper()
	kinds := byKind(objs)
	max := partitions(t)
	for name, h := range kinds["HorizontalPodAutoscaler"] {
		target := h.Str("spec", "scaleTargetRef", "name")
		d, ok := kinds["Deployment"][target]
		if !ok || h.Str("spec", "scaleTargetRef", "kind") != "Deployment" {
			t.Errorf("HPA %s scales %s, which is not a rendered Deployment", name, target)
			continue
		}
		if d.Str("metadata", "labels", "app.kubernetes.io/component") != "dispatcher" {
			t.Errorf("HPA %s scales %s; only the dispatcher is autoscaled", name, target)
		}
		if _, fixed := d.Get("spec", "replicas").(int); fixed {
			t.Errorf("Deployment %s sets replicas and is autoscaled: every upgrade would reset the HPA's count", target)
		}
		hi, _ := h.Get("spec", "maxReplicas").(int)
		lo, _ := h.Get("spec", "minReplicas").(int)
		if hi < 1 || hi > max {
			t.Errorf("HPA %s maxReplicas %d, want 1..%d (the partitions of %s)", name, hi, max, topics.Requested)
		}
		if lo < 1 || lo > hi {
			t.Errorf("HPA %s minReplicas %d outside 1..maxReplicas %d", name, lo, hi)
		}
	}
	for name, d := range kinds["Deployment"] {
		comp := d.Str("metadata", "labels", "app.kubernetes.io/component")
		if n, ok := d.Get("spec", "replicas").(int); ok && (comp == "dispatcher" || comp == "sink") && n > max {
			t.Errorf("Deployment %s has %d replicas, more than the %d partitions", name, n, max)
		}
	}
}

// checkSetupJob: a pre-install/pre-upgrade hook applies a topics file
// equal to topics.yaml with notifyctl.
func checkSetupJob(t *testing.T, objs []Object) {
	t.Helper()
	kinds := byKind(objs)
	var jobs []Object
	for _, j := range kinds["Job"] {
		jobs = append(jobs, j)
	}
	if len(jobs) != 1 {
		t.Fatalf("want one setup Job, got %d", len(jobs))
	}
	job := jobs[0]
	hooks := strings.Split(job.Str("metadata", "annotations", "helm.sh/hook"), ",")
	sort.Strings(hooks)
	if strings.Join(hooks, ",") != "pre-install,pre-upgrade" {
		t.Errorf("setup Job hooks %v, want pre-install and pre-upgrade", hooks)
	}
	pod, _ := job.PodSpec()
	if pod.Str("restartPolicy") != "Never" && pod.Str("restartPolicy") != "OnFailure" {
		t.Errorf("setup Job restartPolicy %q", pod.Str("restartPolicy"))
	}
	c := pod.List("containers")[0]
	args := c.Strings("args")
	if serviceOf(c) != "notifyctl" || len(args) < 4 || args[0] != "topics" || args[1] != "apply" || args[2] != "--file" {
		t.Fatalf("setup Job runs %s %v, want notifyctl topics apply --file ...", c.Str("image"), args)
	}
	file := args[3]
	var cmName string
	for _, m := range c.List("volumeMounts") {
		if strings.HasPrefix(file, m.Str("mountPath")+"/") {
			for _, v := range pod.List("volumes") {
				if v.Str("name") == m.Str("name") {
					cmName = v.Str("configMap", "name")
				}
			}
		}
	}
	cm, ok := kinds["ConfigMap"][cmName]
	if !ok {
		t.Fatalf("the topics file %s is not mounted from a rendered ConfigMap", file)
	}
	if !strings.Contains(cm.Str("metadata", "annotations", "helm.sh/hook"), "pre-install") {
		t.Errorf("ConfigMap %s is not a pre-install hook: it would not exist when the Job runs", cmName)
	}
	if w, _ := strconv.Atoi(cm.Str("metadata", "annotations", "helm.sh/hook-weight")); w >= atoiOr(job.Str("metadata", "annotations", "helm.sh/hook-weight"), 0) {
		t.Errorf("ConfigMap %s hook weight %d is not below the Job's", cmName, w)
	}
	got, err := topics.Parse([]byte(cm.Str("data", filepath.Base(file))))
	if err != nil {
		t.Fatalf("the setup Job's topics file: %v", err)
	}
	want, err := topics.Load(filepath.Join(repoRoot(t), "topics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the setup Job applies topics that differ from topics.yaml:\n got %+v\nwant %+v", got, want)
	}
	// Hooks run before the release's own Secret exists: a secret the Job
	// reads must come from a hook Secret or one the user manages.
	for _, e := range c.List("env") {
		name := e.Str("valueFrom", "secretKeyRef", "name")
		if name == "" {
			continue
		}
		if s, ok := kinds["Secret"][name]; ok && !strings.Contains(s.Str("metadata", "annotations", "helm.sh/hook"), "pre-install") {
			t.Errorf("setup Job reads %s from Secret %s, which is created after pre-install hooks run", e.Str("name"), name)
		}
	}
	if c.List("envFrom") != nil && len(c.List("envFrom")) > 0 {
		t.Errorf("setup Job uses envFrom; the release's ConfigMaps do not exist yet when it runs")
	}
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestChartRefusesBadValues: the schema and the chart's own checks stop
// values that would deploy something broken, with a message naming it.
func TestChartRefusesBadValues(t *testing.T) {
	root := repoRoot(t)
	h := helm(t)
	chart := filepath.Join(root, chartRel)
	cases := []struct {
		name string
		set  []string
		want string
	}{
		{"HPA above the partition count", []string{"dispatcher.autoscaling.maxReplicas=13"}, "exceeds the 12 partitions"},
		{"fixed dispatchers above the partition count", []string{"dispatcher.autoscaling.enabled=false", "dispatcher.replicas=13"}, "exceeds the 12 partitions"},
		{"sinks above the partition count", []string{"sink.replicas=13"}, "exceeds the 12 partitions"},
		{"minReplicas above maxReplicas", []string{"dispatcher.autoscaling.minReplicas=8", "dispatcher.autoscaling.maxReplicas=4"}, "minReplicas"},
		{"grace period shorter than the drain", []string{"shutdown.terminationGracePeriodSeconds=30"}, "terminationGracePeriodSeconds"},
		{"writable root file system", []string{"containerSecurityContext.readOnlyRootFilesystem=false"}, "readOnlyRootFilesystem"},
		{"privilege escalation", []string{"containerSecurityContext.allowPrivilegeEscalation=true"}, "allowPrivilegeEscalation"},
		{"root", []string{"podSecurityContext.runAsNonRoot=false"}, "runAsNonRoot"},
		{"a secret in a ConfigMap", []string{"webhook.env.WANOTIFY_WEBHOOK_SECRET=s3cret"}, "WANOTIFY_WEBHOOK_SECRET"},
		{"a variable outside WANOTIFY_", []string{"ingest.env.HTTP_PROXY=x"}, "HTTP_PROXY"},
		{"no provider origin without the simulator", []string{"simulator.enabled=false"}, "dispatcher.xpressbot.baseURL is required"},
		{"unknown provider", []string{"dispatcher.provider=twilio"}, "provider"},
		{"unknown value", []string{"dispatcher.replicaCount=3"}, "replicaCount"},
		{"no resources", []string{"sink.resources=null"}, "resources"},
		{"client certificate without key", []string{"kafka.tls.enabled=true", "kafka.tls.secretName=k", "kafka.tls.certKey=tls.crt"}, "keyKey"},
		{"bad API key entry", []string{"secrets.values.WANOTIFY_INGEST_API_KEYS=demo:nothex"}, "WANOTIFY_INGEST_API_KEYS"},
		{"simulator next to a real provider", []string{"dispatcher.xpressbot.baseURL=https://xpressbot.example.net"}, "simulator.enabled is true while the dispatcher sends to a real provider"},
		{"short webhook secret", []string{"secrets.values.WANOTIFY_WEBHOOK_SECRET=short"}, "WANOTIFY_WEBHOOK_SECRET"},
		{"short simulator admin token", []string{"secrets.values.WANOTIFY_SIM_ADMIN_TOKEN=short"}, "WANOTIFY_SIM_ADMIN_TOKEN"},
		{"one Kafka user for every service", []string{"kafka.sasl.username=wanotify"}, "username"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// On top of a configuration that renders (the simulator on).
			_, err := h.Template(ctxFor(t), "wanotify", chart, nil, append([]string{"simulator.enabled=true"}, c.set...)...)
			if err == nil {
				t.Fatalf("helm template accepted %v", c.set)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not mention %q:\n%v", c.want, err)
			}
		})
	}
}

// TestChartFollowsTopicsFile: the partition cap comes from the topics file
// the chart applies, so a smaller topic count lowers it.
func TestChartFollowsTopicsFile(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	six := strings.Replace(string(repoFile(t, "topics.yaml")), "partitions: 12", "partitions: 6", 1)
	if six == string(repoFile(t, "topics.yaml")) {
		t.Fatal("topics.yaml has no \"partitions: 12\" to change")
	}
	vf := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(vf, []byte("topics:\n  file: |\n"+indent(six, "    ")), 0o644); err != nil {
		t.Fatal(err)
	}
	h := helm(t)
	chart := filepath.Join(root, chartRel)
	if _, err := h.Template(ctxFor(t), "wanotify", chart, []string{vf}, "simulator.enabled=true", "dispatcher.autoscaling.maxReplicas=6", "dispatcher.autoscaling.minReplicas=2"); err != nil {
		t.Fatalf("6 dispatchers on 6 partitions refused: %v", err)
	}
	_, err := h.Template(ctxFor(t), "wanotify", chart, []string{vf}, "simulator.enabled=true", "dispatcher.autoscaling.maxReplicas=7")
	if err == nil || !strings.Contains(err.Error(), "exceeds the 6 partitions") {
		t.Fatalf("7 dispatchers on 6 partitions: %v", err)
	}
	out, err := h.Template(ctxFor(t), "wanotify", chart, []string{vf}, "simulator.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "partitions: 6") {
		t.Error("the setup Job does not apply the topics file from values")
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestChartShipsDashboardsAndAlerts: every *.json under files/dashboards
// becomes a ConfigMap, and the groups of files/alerts.yml a PrometheusRule.
func TestChartShipsDashboardsAndAlerts(t *testing.T) {
	root := repoRoot(t)
	chart := filepath.Join(t.TempDir(), "wanotify")
	copyDir(t, filepath.Join(root, chartRel), chart)
	dashboards := map[string]string{
		"pipeline-overview.json": `{"title": "Pipeline overview", "uid": "wanotify-overview", "panels": []}`,
		"dispatcher.json":        `{"title": "Dispatcher", "uid": "wanotify-dispatcher", "panels": []}`,
	}
	for name, body := range dashboards {
		if err := os.WriteFile(filepath.Join(chart, "files", "dashboards", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	alerts := "groups:\n  - name: wanotify\n    rules:\n      - alert: WanotifyDispatcherDown\n        expr: up{service=\"dispatcher\"} == 0\n        for: 5m\n"
	if err := os.WriteFile(filepath.Join(chart, "files", "alerts.yml"), []byte(alerts), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := helm(t).Template(ctxFor(t), "wanotify", chart, nil, "simulator.enabled=true", "dashboards.enabled=true", "prometheusRule.enabled=true", "serviceMonitor.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	rules := 0
	monitors := map[string]bool{}
	for _, o := range objs {
		switch o.Kind() {
		case "ConfigMap":
			for name, body := range dashboards {
				if o.Str("data", name) == body {
					found[name] = true
					if o.Str("metadata", "labels", "grafana_dashboard") != "1" {
						t.Errorf("dashboard ConfigMap %s lacks the grafana_dashboard label", o.Name())
					}
				}
			}
		case "PrometheusRule":
			rules++
			if o.Str("spec", "groups", "0", "rules", "0", "alert") != "WanotifyDispatcherDown" {
				t.Errorf("PrometheusRule does not carry files/alerts.yml: %v", o.Get("spec"))
			}
		case "ServiceMonitor":
			svc := o.Str("spec", "endpoints", "0", "relabelings", "0", "replacement")
			monitors[svc] = true
			if o.Str("spec", "endpoints", "0", "path") != "/metrics" {
				t.Errorf("ServiceMonitor %s does not scrape /metrics", o.Name())
			}
		}
	}
	for name := range dashboards {
		if !found[name] {
			t.Errorf("dashboard %s is not shipped as a ConfigMap", name)
		}
	}
	if rules != 1 {
		t.Errorf("%d PrometheusRules, want 1", rules)
	}
	for _, svc := range []string{"ingest", "dispatcher", "webhook", "sink"} {
		if !monitors[svc] {
			t.Errorf("no ServiceMonitor labels its targets service=%s", svc)
		}
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
