package cli

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wanotify/wanotify/pkg/topics"
)

func newTopicsCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create, reconcile and describe the topics of topics.yaml",
		Example: `  notifyctl topics apply --dry-run
  notifyctl topics describe -o json`,
	}
	var file string
	var dryRun bool
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Create missing topics and reconcile existing ones with topics.yaml",
		Long: `apply creates every topic of topics.yaml that is missing, sets configs that
differ, and grows partition counts. It never shrinks a topic (Kafka cannot), and
running it twice changes nothing the second time.`,
		Example: `  notifyctl topics apply
  notifyctl topics apply --file deploy/topics.yaml --dry-run
  WANOTIFY_KAFKA_BROKERS=kafka-0:9092 notifyctl topics apply -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := topics.Load(file)
			if err != nil {
				return &UsageError{err}
			}
			cl, err := app.KafkaClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			changes, err := topics.Reconcile(ctx, kadm.NewClient(cl), f, dryRun)
			type row struct{ Topic, Action, Detail string }
			rows := make([]row, 0, len(changes))
			for _, c := range changes {
				rows = append(rows, row{c.Topic, c.Action, c.Detail})
			}
			perr := app.Print(map[string]any{"dry_run": dryRun, "changes": rows}, func(w *tabwriter.Writer) {
				if len(rows) == 0 {
					fmt.Fprintln(w, "topics are up to date")
					return
				}
				fmt.Fprintln(w, "TOPIC\tACTION\tDETAIL")
				for _, r := range rows {
					fmt.Fprintf(w, "%s\t%s\t%s\n", r.Topic, r.Action, r.Detail)
				}
			})
			if err != nil {
				return err
			}
			return perr
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "topics.yaml", "topics file")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change without changing it")

	describe := &cobra.Command{
		Use:   "describe",
		Short: "Show the topics of topics.yaml: partitions, configs, end offsets and consumer lag per group",
		Long: `describe shows each topic of topics.yaml as the cluster has it: partition count
(and the file's, when they differ), the sum of its partitions' end offsets,
the lag of every consumer group reading it, and the configs set on it.

Topics written in transactions (retry, DLQ and status topics, by the
dispatcher) hold a commit marker after each transaction; markers take offsets,
so a group that has read everything can show a lag of up to one per
partition.`,
		Example: `  notifyctl topics describe
  notifyctl topics describe -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := topics.Load(file)
			if err != nil {
				return &UsageError{err}
			}
			cl, err := app.KafkaClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			return describeTopics(ctx, app, adm, f)
		},
	}
	describe.Flags().StringVarP(&file, "file", "f", "topics.yaml", "topics file")
	cmd.AddCommand(apply, describe)
	return cmd
}

// TopicInfo is one row of topics describe.
type TopicInfo struct {
	Name       string            `json:"name"`
	Exists     bool              `json:"exists"`
	Partitions int               `json:"partitions"`
	Wanted     int32             `json:"wanted_partitions"`
	Records    int64             `json:"end_offset_sum"`
	Configs    map[string]string `json:"configs"`
	Lag        map[string]int64  `json:"lag_by_group"`
}

func describeTopics(ctx context.Context, app *App, adm *kadm.Client, f *topics.File) error {
	details, err := adm.ListTopics(ctx, f.Names()...)
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, f.Names()...)
	if err != nil {
		return err
	}
	infos := make([]TopicInfo, 0, len(f.Topics))
	byName := map[string]*TopicInfo{}
	for _, t := range f.Topics {
		ti := TopicInfo{Name: t.Name, Wanted: t.Partitions, Configs: map[string]string{}, Lag: map[string]int64{}}
		if d, ok := details[t.Name]; ok && d.Err == nil {
			ti.Exists = true
			ti.Partitions = len(d.Partitions)
		}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic == t.Name && o.Err == nil {
				ti.Records += o.Offset
			}
		})
		infos = append(infos, ti)
	}
	for i := range infos {
		byName[infos[i].Name] = &infos[i]
	}
	if rcs, err := adm.DescribeTopicConfigs(ctx, f.Names()...); err == nil {
		for _, rc := range rcs {
			ti := byName[rc.Name]
			if ti == nil {
				continue
			}
			for _, c := range rc.Configs {
				if c.Value != nil && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					ti.Configs[c.Key] = *c.Value
				}
			}
		}
	}
	if groups, err := adm.ListGroups(ctx); err == nil {
		lags, err := adm.Lag(ctx, groups.Groups()...)
		if err == nil {
			lags.Each(func(l kadm.DescribedGroupLag) {
				for topic, parts := range l.Lag {
					ti := byName[topic]
					if ti == nil {
						continue
					}
					var sum int64
					for _, p := range parts {
						if p.Err == nil && p.Lag > 0 {
							sum += p.Lag
						}
					}
					ti.Lag[l.Group] = sum
				}
			})
		}
	}
	return app.Print(infos, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TOPIC\tPARTITIONS\tEND OFFSETS\tLAG (group=lag)\tCONFIGS")
		for _, ti := range infos {
			parts := fmt.Sprint(ti.Partitions)
			if !ti.Exists {
				parts = "missing"
			} else if int32(ti.Partitions) != ti.Wanted {
				parts = fmt.Sprintf("%d (file: %d)", ti.Partitions, ti.Wanted)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", ti.Name, parts, ti.Records, kv(ti.Lag), kvs(ti.Configs))
		}
	})
}

func kv(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", k, m[k])
	}
	if s == "" {
		return "-"
	}
	return s
}

func kvs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		if s != "" {
			s += " "
		}
		s += k + "=" + m[k]
	}
	return s
}
