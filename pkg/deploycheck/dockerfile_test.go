package deploycheck

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is the Dockerfile as instructions, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(repoFile(t, "Dockerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

type stage struct {
	name, from string
	body       []instruction
}

func stages(ins []instruction) (globalArgs []string, out []stage) {
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			out = append(out, st)
			continue
		}
		if len(out) == 0 {
			if in.cmd == "ARG" {
				globalArgs = append(globalArgs, in.args)
			}
			continue
		}
		out[len(out)-1].body = append(out[len(out)-1].body, in)
	}
	return globalArgs, out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t)
	globalArgs, sts := stages(ins)
	if len(sts) == 0 {
		t.Fatal("no stages")
	}
	byName := map[string]stage{}
	for _, s := range sts {
		byName[s.name] = s
	}
	if !strings.HasPrefix(strings.Join(globalArgs, " "), "SERVICE") {
		t.Errorf("no global ARG SERVICE before the first FROM (got %v)", globalArgs)
	}
	if last := sts[len(sts)-1]; last.from != "${SERVICE}" {
		t.Errorf("the final stage is FROM %s, want FROM ${SERVICE}", last.from)
	}

	// The builder: a pinned Go at least as new as go.mod asks, static.
	build := sts[0]
	m := regexp.MustCompile(`^golang:(1\.\d+\.\d+)(-[a-z0-9]+)?` + digestPin + `$`).FindStringSubmatch(build.from)
	if m == nil {
		t.Fatalf("the build stage is FROM %s, want golang:<major.minor.patch>@sha256:<digest>", build.from)
	}
	gomod := regexp.MustCompile(`(?m)^go (\d+\.\d+(\.\d+)?)$`).FindStringSubmatch(string(repoFile(t, "go.mod")))
	if gomod == nil {
		t.Fatal("go.mod has no go directive")
	}
	if compareVersions(m[1], gomod[1]) < 0 {
		t.Errorf("the builder's Go %s is older than go.mod's go %s", m[1], gomod[1])
	}
	body := instructionsText(build.body)
	for _, want := range []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local", `./services/${SERVICE}`, "./deploy/healthcheck"} {
		if !strings.Contains(body, want) {
			t.Errorf("the build stage does not mention %s", want)
		}
	}
	// The allow-list of SERVICE: every production service, and the
	// local-only binaries refused.
	caseLine := regexp.MustCompile(`case "\$\{SERVICE\}" in\s+([a-z|]+)\)`).FindStringSubmatch(body)
	if caseLine == nil {
		t.Fatal("the build stage does not check SERVICE against a list")
	}
	allowed := strings.Split(caseLine[1], "|")
	sort.Strings(allowed)
	want := append([]string(nil), Production...)
	sort.Strings(want)
	if strings.Join(allowed, ",") != strings.Join(want, ",") {
		t.Errorf("SERVICE accepts %v, want the production services %v", allowed, want)
	}

	runtime := byName["runtime"]
	if !regexp.MustCompile(`^gcr\.io/distroless/static-debian12:nonroot` + digestPin + `$`).MatchString(runtime.from) {
		t.Errorf("the runtime base is %s, want gcr.io/distroless/static-debian12:nonroot@sha256:<digest>", runtime.from)
	}
	rt := instructionsText(runtime.body)
	if !strings.Contains(rt, "USER 65532:65532") {
		t.Error("the runtime stage does not run as user 65532")
	}
	if !strings.Contains(rt, "COPY topics.yaml /etc/wanotify/topics.yaml") {
		t.Error("topics.yaml is not copied to /etc/wanotify/topics.yaml")
	}
	if !strings.Contains(rt, "/usr/local/bin/healthcheck") {
		t.Error("the healthcheck binary the compose health checks run is not in the image")
	}

	vars := serviceVars(t)
	for _, svc := range Production {
		st, ok := byName[svc]
		if !ok {
			t.Errorf("no stage %s", svc)
			continue
		}
		if st.from != "runtime" {
			t.Errorf("stage %s is FROM %s, want runtime", svc, st.from)
		}
		var entry []string
		for _, in := range st.body {
			switch in.cmd {
			case "ENTRYPOINT":
				if err := json.Unmarshal([]byte(in.args), &entry); err != nil {
					t.Errorf("stage %s: ENTRYPOINT is not in exec form: %v", svc, err)
				}
			case "ENV":
				for _, kv := range strings.Fields(in.args) {
					k, v, _ := strings.Cut(kv, "=")
					if _, ok := vars[svc][k]; !ok {
						t.Errorf("stage %s: ENV %s is not a variable %s reads", svc, k, svc)
					}
					for _, lv := range listenVars {
						if k == lv && !strings.HasPrefix(v, "0.0.0.0:") {
							t.Errorf("stage %s: %s=%s does not listen on every interface", svc, k, v)
						}
					}
				}
			case "USER":
				t.Errorf("stage %s: changes USER; the runtime's non-root user is the one to keep", svc)
			}
		}
		if len(entry) == 0 || entry[0] != "/usr/local/bin/"+svc {
			t.Errorf("stage %s: ENTRYPOINT %v, want [/usr/local/bin/%s]", svc, entry, svc)
		}
		if !strings.Contains(instructionsText(st.body), "COPY --from=build /out/"+svc+" /usr/local/bin/"+svc) {
			t.Errorf("stage %s does not copy its binary from the build stage", svc)
		}
	}
	for _, in := range ins {
		if in.cmd == "FROM" && strings.Contains(in.args, ":latest") {
			t.Errorf("FROM %s is not pinned", in.args)
		}
	}
}

// digestPin is an image reference's digest: a tag can be moved to other
// content, a digest cannot (issue 16, item 5).
const digestPin = `@sha256:[a-f0-9]{64}`

// compareVersions compares dotted decimal versions ("1.26.8", "1.26").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func instructionsText(ins []instruction) string {
	var sb strings.Builder
	for _, in := range ins {
		sb.WriteString(in.cmd + " " + in.args + "\n")
	}
	return sb.String()
}

// TestDockerignoreKeepsTheBuildInputs: every file the production binaries
// are compiled from (Go sources and embedded files) is in the build
// context, and local state is not.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	root := repoRoot(t)
	di, err := ParseDockerIgnore(string(repoFile(t, ".dockerignore")))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := []string{"./deploy/healthcheck"}
	for _, s := range Production {
		pkgs = append(pkgs, "./services/"+s)
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles,Standard"}, pkgs...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	files := 0
	for dec.More() {
		var p struct {
			Dir      string
			Standard bool
			Module   *struct{ Path string }
			GoFiles  []string
			Embed    []string `json:"EmbedFiles"`
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Standard || p.Module == nil || p.Module.Path != "github.com/wanotify/wanotify" {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.Embed...) {
			files++
			path := filepath.ToSlash(filepath.Join(rel, f))
			if di.Excluded(path) {
				t.Errorf(".dockerignore leaves %s out of the build context; the image build needs it", path)
			}
		}
	}
	if files == 0 {
		t.Fatal("go list found no files of the module")
	}
	for _, need := range []string{"go.mod", "go.sum", "topics.yaml"} {
		if di.Excluded(need) {
			t.Errorf(".dockerignore leaves %s out of the build context", need)
		}
	}
	for _, local := range []string{".git/config", ".data/kafka/log", "bin/ingest", ".env", "rendered/default.yaml", "pkg/sink/sink_test.go", "helm/wanotify/values.yaml"} {
		if !di.Excluded(local) {
			t.Errorf(".dockerignore sends %s to the build context", local)
		}
	}
}

func TestDockerIgnoreRules(t *testing.T) {
	di, err := ParseDockerIgnore("# comment\n*\n!pkg/\n**/*_test.go\n!pkg/keep_test.go\n**/testdata/\n")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"README.md":                    true,
		"pkg/a/b.go":                   false,
		"pkg/a/b_test.go":              true,
		"pkg/keep_test.go":             false,
		"pkg/a/testdata/x.json":        true,
		"services/ingest/main.go":      true,
		"pkg":                          false,
		"pkgx/a.go":                    true,
		"pkg/deep/er/testdata/f/g.txt": true,
	}
	for path, want := range cases {
		if got := di.Excluded(path); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", path, got, want)
		}
	}
}
