package deploycheck

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wanotify/wanotify/pkg/cli"
	"github.com/wanotify/wanotify/pkg/config"
)

// Var is one configuration variable as a service documents it.
type Var struct {
	Name        string
	Default     string // as printed, without backquotes; empty when none
	Description string
	Secret      bool
}

// secretMark is what --help-markdown prints in place of a secret's default.
const secretMark = "(secret, no default)"

var mdRow = regexp.MustCompile("^\\|\\s*`(WANOTIFY_[A-Z0-9_]+)`\\s*\\|(.*?)\\|(.*)\\|\\s*$")

// ParseMarkdownVars reads the table rows of --help-markdown (or of the
// README's configuration table): | `NAME` | default | description |.
// Other lines are ignored.
func ParseMarkdownVars(text string) []Var {
	var out []Var
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := mdRow.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		def := strings.TrimSpace(m[2])
		v := Var{Name: m[1], Description: strings.TrimSpace(m[3])}
		if def == secretMark {
			v.Secret = true
		} else {
			v.Default = strings.Trim(def, "`")
		}
		out = append(out, v)
	}
	return out
}

// VarSet is a service's variables by name.
type VarSet map[string]Var

// Names returns the sorted names.
func (s VarSet) Names() []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// helpVariants are extra environments a service is asked for its table
// under: variables that are read only when a choice selects them (the
// dispatcher reads the Cloud API client's variables only with
// WANOTIFY_PROVIDER=cloudapi).
var helpVariants = [][]string{nil, {"WANOTIFY_PROVIDER=cloudapi"}}

// ServiceVars builds the services (./services/<name>) into binDir and
// returns the variables each prints with --help-markdown, under every
// variant of helpVariants. The simulator is read from its source instead
// (see SimulatorVars): it starts serving whatever its arguments are.
func ServiceVars(ctx context.Context, root, binDir string, services ...string) (map[string]VarSet, error) {
	out := map[string]VarSet{}
	var build []string
	for _, s := range services {
		if s == "simulator" {
			vs, err := SimulatorVars(root)
			if err != nil {
				return nil, err
			}
			out[s] = vs
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "services", s, "main.go")); err != nil {
			return nil, fmt.Errorf("service %s: services/%s/main.go is missing: %w", s, s, err)
		}
		build = append(build, "./services/"+s)
	}
	if len(build) == 0 {
		return out, nil
	}
	args := append([]string{"build", "-o", binDir + string(filepath.Separator)}, build...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(build, " "), err, b)
	}
	for _, pkg := range build {
		name := filepath.Base(pkg)
		set := VarSet{}
		for _, extra := range helpVariants {
			text, err := helpMarkdown(ctx, filepath.Join(binDir, name), extra)
			if err != nil && name == "notifyctl" && strings.Contains(err.Error(), "unknown flag: --help-markdown") {
				text, err = notifyctlMarkdown(), nil
			}
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", name, err)
			}
			vars := ParseMarkdownVars(text)
			if len(vars) == 0 {
				return nil, fmt.Errorf("service %s: --help-markdown printed no variable rows:\n%s", name, text)
			}
			for _, v := range vars {
				set[v.Name] = v
			}
		}
		out[name] = set
	}
	return out, nil
}

// notifyctlMarkdown is the table of the variables notifyctl reads before
// running any command, for a notifyctl that does not answer
// --help-markdown: it is a command tree rather than a service, and reads
// its configuration through the same registry.
func notifyctlMarkdown() string {
	cli.MainIO([]string{"--help"}, strings.NewReader(""), io.Discard, io.Discard)
	return config.Markdown()
}

// helpMarkdown runs bin --help-markdown in a clean environment, so the
// caller's WANOTIFY_* variables do not change what the service reads.
func helpMarkdown(ctx context.Context, bin string, extraEnv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--help-markdown")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s --help-markdown: %w\n%s", filepath.Base(bin), err, stderr.String())
	}
	return stdout.String(), nil
}

var simVar = regexp.MustCompile(`^WANOTIFY_SIM_[A-Z0-9_]+$`)

// SimulatorVars reads the simulator's variables from the exported
// constants of pkg/simulator whose values start with WANOTIFY_SIM_.
// Secrets are the API key, the webhook secret and the admin token.
func SimulatorVars(root string) (VarSet, error) {
	dir := filepath.Join(root, "pkg", "simulator")
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("simulator variables: %w", err)
	}
	out := VarSet{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			return nil, fmt.Errorf("simulator variables: %w", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !simVar.MatchString(s) {
				return true
			}
			out[s] = Var{Name: s, Secret: strings.HasSuffix(s, "_API_KEY") || strings.HasSuffix(s, "_SECRET") || strings.HasSuffix(s, "_TOKEN")}
			return true
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("simulator variables: no WANOTIFY_SIM_* constant in %s", dir)
	}
	return out, nil
}

// ReadmeVars returns the variables of README.md's configuration table, or
// nil when README.md has no such table.
func ReadmeVars(root string) (VarSet, error) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	vars := ParseMarkdownVars(string(b))
	if len(vars) == 0 {
		return nil, nil
	}
	out := VarSet{}
	for _, v := range vars {
		out[v.Name] = v
	}
	return out, nil
}
