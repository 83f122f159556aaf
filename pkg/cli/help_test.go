package cli_test

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/wanotify/wanotify/pkg/cli"
)

// Every command an operator can run documents itself with examples.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		if c.Short == "" || strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q: Short %q, Example %q", c.CommandPath(), c.Short, c.Example)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.NewRoot(&cli.App{}))

	r := run(t, "", "dlq", "replay", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "--force") {
		t.Fatalf("dlq replay --help: %s", r)
	}
	if r := run(t, "", "bogus"); r.code != cli.ExitUsage {
		t.Fatalf("unknown command: %s", r)
	}
}
