package deploycheck

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wanotify/wanotify/pkg/testinfra"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error

	varsOnce sync.Once
	vars     map[string]VarSet
	varsErr  error
	varsDir  string

	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if varsDir != "" {
		os.RemoveAll(varsDir)
	}
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() { rootDir, rootErr = RepoRoot() })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serviceVars builds every production service once per test binary and
// returns what each reads.
func serviceVars(t *testing.T) map[string]VarSet {
	t.Helper()
	root := repoRoot(t)
	varsOnce.Do(func() {
		varsDir, varsErr = os.MkdirTemp("", "deploycheck-bin-")
		if varsErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		vars, varsErr = ServiceVars(ctx, root, varsDir, Production...)
	})
	if varsErr != nil {
		t.Fatalf("reading the services' variables: %v", varsErr)
	}
	return vars
}

// unionVars is every variable any production service reads.
func unionVars(t *testing.T) VarSet {
	t.Helper()
	out := VarSet{}
	for _, set := range serviceVars(t) {
		for n, v := range set {
			out[n] = v
		}
	}
	return out
}

// helm returns the pinned helm, building it on first use. With CI=true a
// helm that cannot be had fails the test; elsewhere it skips.
func helm(t *testing.T) Helm {
	t.Helper()
	helmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		helmBin, helmErr = FindHelm(ctx)
	})
	if helmErr != nil {
		testinfra.RequireCI(t, "helm "+HelmVersion+" is not available: "+helmErr.Error())
	}
	return Helm{Bin: helmBin}
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
