// Package deploycheck holds the checks of wanotify's deployment files that
// run without Docker or a cluster: the Helm chart (helm lint, and the
// manifests helm template renders with the default and a production-like
// values file), docker-compose.yml, the Dockerfile and .dockerignore.
//
// The configuration variables the checks compare against are never listed
// by hand: they come from the services themselves (`<binary>
// --help-markdown`, the same output the README's configuration table is
// built from), so a renamed or new variable is caught the first time the
// tests run.
package deploycheck

import (
	"errors"
	"os"
	"path/filepath"
)

// Production services: each has an image built by the Dockerfile. broker,
// clickhouse and local exist for one machine only.
var Production = []string{"ingest", "dispatcher", "webhook", "sink", "notifyctl", "simulator"}

// RepoRoot finds the repository root (the directory holding go.mod) from
// the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("deploycheck: no go.mod above the working directory")
		}
		dir = parent
	}
}
