package broker

import (
	"strings"
	"testing"

	"github.com/wanotify/wanotify/pkg/config"
)

func load(env map[string]string) Config {
	return Load(config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil))
}

// A node of a local cluster is named by its id in the voter list; a list
// that is malformed, leaves the node out or contradicts its ports is
// refused with the variable named.
func TestClusterNodeSettings(t *testing.T) {
	base := map[string]string{"WANOTIFY_BROKER_KIND": "apache", "WANOTIFY_KAFKA_LIBS": "/libs", "WANOTIFY_BROKER_PORT": "9092",
		"WANOTIFY_BROKER_NODE_ID": "2", "WANOTIFY_BROKER_VOTERS": "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103",
		"WANOTIFY_BROKER_CLUSTER_ID": "abc"}
	c := load(base)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	nodes, err := c.Apache.voters(c.Port)
	if err != nil || len(nodes) != 3 || c.Apache.NodeID != 2 || c.Apache.ClusterID != "abc" {
		t.Fatalf("voters = %v, %v; config %+v", nodes, err, c.Apache)
	}
	for name, change := range map[string]map[string]string{
		"malformed":           {"WANOTIFY_BROKER_VOTERS": "1@127.0.0.1"},
		"node not listed":     {"WANOTIFY_BROKER_NODE_ID": "4"},
		"port disagrees":      {"WANOTIFY_BROKER_CONTROLLER_PORT": "9999"},
		"controller = client": {"WANOTIFY_BROKER_PORT": "9102"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range change {
			env[k] = v
		}
		if err := load(env).Validate(); err == nil || !strings.Contains(err.Error(), "WANOTIFY_BROKER_VOTERS") {
			t.Errorf("%s: Validate() = %v, want it to name WANOTIFY_BROKER_VOTERS", name, err)
		}
	}
}
