// Package topics names every Kafka topic of wanotify, reads topics.yaml and
// reconciles a cluster with it through kadm: missing topics are created,
// configs set, partitions grown. Shrinking is refused, because Kafka cannot
// do it and co-partitioning would silently break.
package topics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"gopkg.in/yaml.v3"
)

// Topic names.
const (
	// Requested is the transactional lane's topic (package lanes), and
	// the topic of producers that know no lanes.
	Requested = "notifications.requested"
	// Critical and Bulk are the critical (OTP) and bulk (marketing)
	// lanes' topics.
	Critical = "notifications.critical"
	Bulk     = "notifications.bulk"
	Retry5s  = "notifications.retry-5s"
	Retry15s = "notifications.retry-15s"
	Retry45s = "notifications.retry-45s"
	DLQ      = "notifications.dlq"
	Status   = "notifications.status"
	Dedupe   = "notifications.dedupe"
	Pacing   = "notifications.pacing"
	// Deferred holds notifications the recipient cannot get now (131049)
	// until they are due, a day later by default; read only as far as
	// records are due.
	Deferred = "notifications.deferred"
	// Held holds the notifications of senders halted by an account fault
	// until the sender runs again; read only as far as their senders run.
	Held = "notifications.held"
	// Senders holds each sender's state (halted or running) and the
	// dispatcher instances' reports; every instance reads all of it, so
	// it is not co-partitioned (PartitioningOwn, one partition).
	Senders = "notifications.senders"
)

// Partitioning of a topic.
const (
	// PartitioningCo (the default): the topic is keyed by recipient, or
	// written partition by partition alongside such a topic, so its
	// partition count must equal every other co-partitioned topic's.
	PartitioningCo = "co"
	// PartitioningOwn: the topic has a partition count of its own (a
	// state table every instance reads whole); it is not grown with the
	// co-partitioned topics.
	PartitioningOwn = "own"
)

// RetryTiers lists the delay topics in order.
var RetryTiers = []string{Retry5s, Retry15s, Retry45s}

// File is topics.yaml.
type File struct {
	Defaults Defaults `yaml:"defaults"`
	Topics   []Topic  `yaml:"topics"`
}

// Defaults apply to every topic that does not override them.
type Defaults struct {
	Partitions        int32             `yaml:"partitions"`
	ReplicationFactor int16             `yaml:"replication_factor"`
	Configs           map[string]string `yaml:"configs"`
}

// Topic is one topic's desired state.
type Topic struct {
	Name              string            `yaml:"name"`
	Description       string            `yaml:"description"`
	Partitions        int32             `yaml:"partitions"`
	ReplicationFactor int16             `yaml:"replication_factor"`
	Configs           map[string]string `yaml:"configs"`
	// Partitioning is PartitioningCo (default) or PartitioningOwn.
	Partitioning string `yaml:"partitioning"`
}

// CoPartitioned reports whether t shares the partition count of the
// recipient-keyed topics.
func (t Topic) CoPartitioned() bool { return t.Partitioning != PartitioningOwn }

// SetPartitions sets the partition count of every co-partitioned topic
// (tests and tools that run the pipeline on fewer partitions); topics
// with a count of their own keep it.
func (f *File) SetPartitions(n int32) {
	for i := range f.Topics {
		if f.Topics[i].CoPartitioned() {
			f.Topics[i].Partitions = n
		}
	}
}

// Parse reads and validates a topics file. Unknown fields are errors.
func Parse(raw []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("topics file: %w", err)
	}
	f.applyDefaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Load reads a topics file from disk.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func (f *File) applyDefaults() {
	for i := range f.Topics {
		t := &f.Topics[i]
		if t.Partitions == 0 {
			t.Partitions = f.Defaults.Partitions
		}
		if t.ReplicationFactor == 0 {
			t.ReplicationFactor = f.Defaults.ReplicationFactor
		}
		if t.Partitioning == "" {
			t.Partitioning = PartitioningCo
		}
		merged := map[string]string{}
		for k, v := range f.Defaults.Configs {
			merged[k] = v
		}
		for k, v := range t.Configs {
			merged[k] = v
		}
		t.Configs = merged
	}
}

// Validate names the topic and field of every problem.
func (f *File) Validate() error {
	var errs []error
	if len(f.Topics) == 0 {
		errs = append(errs, errors.New("topics: the file lists no topics"))
	}
	seen := map[string]bool{}
	var coCount int32 // partitions of the first co-partitioned topic
	coFirst := ""
	for i, t := range f.Topics {
		where := fmt.Sprintf("topics[%d]", i)
		if t.Name != "" {
			where = fmt.Sprintf("topic %q", t.Name)
		}
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("%s: name: required", where))
		case len(t.Name) > 249 || strings.Trim(t.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "":
			errs = append(errs, fmt.Errorf("%s: name: only letters, digits, '.', '_' and '-' (at most 249)", where))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("%s: name: listed twice", where))
		}
		seen[t.Name] = true
		if t.Partitions < 1 {
			errs = append(errs, fmt.Errorf("%s: partitions: must be at least 1, got %d", where, t.Partitions))
		}
		switch {
		case t.Partitioning != PartitioningCo && t.Partitioning != PartitioningOwn:
			errs = append(errs, fmt.Errorf("%s: partitioning: %q must be %q (default) or %q", where, t.Partitioning, PartitioningCo, PartitioningOwn))
		case t.Partitioning == PartitioningCo && t.Partitions >= 1 && coFirst == "":
			coCount, coFirst = t.Partitions, t.Name
		case t.Partitioning == PartitioningCo && t.Partitions >= 1 && t.Partitions != coCount:
			// One recipient's records sit in one partition number on
			// every co-partitioned topic only while the counts agree.
			errs = append(errs, fmt.Errorf("%s: partitions: %d, but co-partitioned topic %q has %d (co-partitioned topics need one count; a topic not keyed by recipient sets partitioning: %s)",
				where, t.Partitions, coFirst, coCount, PartitioningOwn))
		}
		if t.ReplicationFactor == 0 || t.ReplicationFactor < -1 {
			errs = append(errs, fmt.Errorf("%s: replication_factor: must be -1 (broker default) or at least 1, got %d", where, t.ReplicationFactor))
		}
		for k := range t.Configs {
			if k == "" || strings.ContainsAny(k, " \t") {
				errs = append(errs, fmt.Errorf("%s: configs: invalid key %q", where, k))
			}
		}
	}
	return errors.Join(errs...)
}

// Names lists the topics of the file.
func (f *File) Names() []string {
	out := make([]string, len(f.Topics))
	for i, t := range f.Topics {
		out[i] = t.Name
	}
	return out
}

// Change is one action taken (or planned) by Reconcile.
type Change struct {
	Topic  string
	Action string // "create", "add-partitions", "set-config"
	Detail string
}

func (c Change) String() string { return c.Topic + ": " + c.Action + " " + c.Detail }

// ErrShrink is returned when the file asks for fewer partitions than a
// topic has.
var ErrShrink = errors.New("partitions cannot be reduced")

// Reconcile makes the cluster match f and returns what it changed. With
// dryRun it only reports. Running it twice changes nothing the second time.
func Reconcile(ctx context.Context, adm *kadm.Client, f *File, dryRun bool) ([]Change, error) {
	details, err := adm.ListTopics(ctx, f.Names()...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var changes []Change
	var errs []error
	var toAlter, created []string
	for _, t := range f.Topics {
		d, exists := details[t.Name]
		if !exists || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			changes = append(changes, Change{t.Name, "create", fmt.Sprintf("partitions=%d replication_factor=%d", t.Partitions, t.ReplicationFactor)})
			if dryRun {
				continue
			}
			cfg := map[string]*string{}
			for k, v := range t.Configs {
				cfg[k] = kadm.StringPtr(v)
			}
			resp, err := adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor, cfg, t.Name)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("topic %q: create: %w", t.Name, err))
			} else {
				created = append(created, t.Name)
			}
			continue
		}
		if d.Err != nil {
			errs = append(errs, fmt.Errorf("topic %q: describe: %w", t.Name, d.Err))
			continue
		}
		have := int32(len(d.Partitions))
		switch {
		case t.Partitions < have:
			errs = append(errs, fmt.Errorf("topic %q: partitions: has %d, file asks %d: %w", t.Name, have, t.Partitions, ErrShrink))
			continue
		case t.Partitions > have:
			changes = append(changes, Change{t.Name, "add-partitions", fmt.Sprintf("%d -> %d", have, t.Partitions)})
			if !dryRun {
				resp, err := adm.UpdatePartitions(ctx, int(t.Partitions), t.Name)
				if err == nil {
					err = resp.Error()
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("topic %q: partitions: %w", t.Name, err))
				}
			}
		}
		toAlter = append(toAlter, t.Name)
	}
	if !dryRun && len(created) > 0 {
		if err := waitOnline(ctx, adm, created); err != nil {
			errs = append(errs, err)
		}
	}
	if len(toAlter) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, toAlter...)
		if err != nil {
			return changes, errors.Join(append(errs, fmt.Errorf("describe configs: %w", err))...)
		}
		byName := map[string]kadm.ResourceConfig{}
		for _, rc := range rcs {
			byName[rc.Name] = rc
		}
		for _, t := range f.Topics {
			rc, ok := byName[t.Name]
			if !ok {
				continue
			}
			current := map[string]string{}
			for _, c := range rc.Configs {
				if c.Value != nil {
					current[c.Key] = *c.Value
				}
			}
			keys := make([]string, 0, len(t.Configs))
			for k := range t.Configs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var alters []kadm.AlterConfig
			for _, k := range keys {
				if cur, ok := current[k]; !ok || cur != t.Configs[k] {
					alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(t.Configs[k])})
					changes = append(changes, Change{t.Name, "set-config", fmt.Sprintf("%s=%s (was %q)", k, t.Configs[k], current[k])})
				}
			}
			if len(alters) == 0 || dryRun {
				continue
			}
			resps, err := adm.AlterTopicConfigs(ctx, alters, t.Name)
			if err == nil {
				for _, r := range resps {
					if r.Err != nil {
						err = r.Err
					}
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("topic %q: configs: %w", t.Name, err))
			}
		}
	}
	return changes, errors.Join(errs...)
}

// waitOnline waits until the brokers' metadata lists every topic of names
// with a leader for each partition. Apache Kafka answers CreateTopics once
// its controller has the topic, before the brokers do; without the wait, a
// second apply right after the first (or a producer) would be told the
// topic does not exist, and creating it again fails with
// TOPIC_ALREADY_EXISTS.
func waitOnline(ctx context.Context, adm *kadm.Client, names []string) error {
	for {
		td, err := adm.ListTopics(ctx, names...)
		if err == nil && online(td, names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v created but not yet online: %w", names, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func online(td kadm.TopicDetails, names []string) bool {
	for _, n := range names {
		d, ok := td[n]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return false
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
	}
	return true
}
