package deploycheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HelmModule and HelmVersion pin the helm the checks (and the Makefile)
// use; it is built from the Go module proxy, so nothing but Go is needed.
const (
	HelmModule  = "helm.sh/helm/v3/cmd/helm"
	HelmVersion = "v3.22.0"
)

// KubeVersion is the Kubernetes version manifests are rendered for.
// A helm built from source does not know the version of any cluster and
// would otherwise assume an old one that the chart's kubeVersion refuses.
const KubeVersion = "1.31.0"

// HelmEnv names a helm binary to use instead of building one.
const HelmEnv = "DEPLOYCHECK_HELM"

// FindHelm returns the path of a helm binary: $DEPLOYCHECK_HELM when set,
// else HelmVersion installed with `go install` into a cache directory
// outside the working tree (built once per machine, a few minutes).
func FindHelm(ctx context.Context) (string, error) {
	if p := os.Getenv(HelmEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", HelmEnv, p, err)
		}
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("helm: no cache directory: %w", err)
	}
	dir := filepath.Join(cache, "wanotify", "helm-"+HelmVersion)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("helm: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "install", HelmModule+"@"+HelmVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", HelmModule, HelmVersion, err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("helm: go install left no binary in %s: %w", dir, err)
	}
	return bin, nil
}

// Helm runs one helm command.
type Helm struct{ Bin string }

// Run runs helm with args and returns its standard output; the error
// carries standard error.
func (h Helm) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.Bin, args...)
	// A clean helm home: no plugins, repositories or registry logins of
	// the machine take part.
	tmp, err := os.MkdirTemp("", "deploycheck-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(tmp, "config"),
		"HELM_DATA_HOME="+filepath.Join(tmp, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// Template renders chart with the values files and --set pairs given.
func (h Helm) Template(ctx context.Context, release, chart string, valuesFiles []string, set ...string) ([]byte, error) {
	args := []string{"template", release, chart, "--namespace", "wanotify", "--kube-version", KubeVersion}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return h.Run(ctx, args...)
}

// Lint runs helm lint --strict with the values files given.
func (h Helm) Lint(ctx context.Context, chart string, valuesFiles ...string) ([]byte, error) {
	args := []string{"lint", "--strict", chart, "--kube-version", KubeVersion}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	return h.Run(ctx, args...)
}
