package sink

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/privacy"
	"github.com/wanotify/wanotify/pkg/topics"
)

// Defaults of Config.
const (
	DefaultGroup               = "wanotify-sink"
	DefaultBatchRows           = 5000
	DefaultBatchInterval       = time.Second
	DefaultRetryInitialBackoff = 200 * time.Millisecond
	DefaultRetryMaxBackoff     = 30 * time.Second
	DefaultMaxValueBytes       = 64 << 10
	DefaultDrainTimeout        = 10 * time.Second
	// DefaultRetentionDays keeps events and notification state for a
	// quarter: long enough for monthly reporting, delivery disputes and
	// billing reconciliation (Meta bills per delivered message, monthly),
	// short enough that a person's history does not accumulate.
	DefaultRetentionDays = 90
	// DefaultErrorRetentionDays keeps dead letters and undecodable records
	// as long as the DLQ topic keeps the records themselves (30 days in
	// topics.yaml): past that there is nothing left to replay.
	DefaultErrorRetentionDays = 30
	// DefaultInsertTimeout bounds one ClickHouse insert (or the idle probe).
	DefaultInsertTimeout = 5 * time.Second
)

// KeepForever is the RetentionDays or ErrorRetentionDays that removes the
// TTL (the zero value of those fields means their default).
const KeepForever = -1

// Config is the sink's behaviour. The zero value of a field means its
// default (see Defaults).
type Config struct {
	// Group is the Kafka consumer group (WANOTIFY_SINK_GROUP).
	Group string
	// RequestedTopic, StatusTopic and DLQTopic are the topics consumed;
	// default the names in pkg/topics.
	RequestedTopic, StatusTopic, DLQTopic string
	// CriticalTopic and BulkTopic are the other lanes' topics, read like
	// RequestedTopic (the transactional lane's); default the names in
	// pkg/topics.
	CriticalTopic, BulkTopic string
	// BatchRows flushes a batch once it holds this many records
	// (WANOTIFY_SINK_BATCH_ROWS, default 5000).
	BatchRows int
	// BatchInterval flushes a batch this long after its first record
	// arrived, however small it is (WANOTIFY_SINK_BATCH_INTERVAL, default 1s).
	BatchInterval time.Duration
	// RetryInitialBackoff and RetryMaxBackoff bound the exponential, jittered
	// wait between attempts to insert a batch ClickHouse refused
	// (WANOTIFY_SINK_RETRY_MAX_BACKOFF, default 30s; initial 200ms).
	RetryInitialBackoff time.Duration
	RetryMaxBackoff     time.Duration
	// InsertTimeout bounds one attempt to write a batch: a ClickHouse that
	// does not answer within it (frozen, partitioned, stuck in a long GC)
	// is treated like one that refuses the batch: the sink stops being
	// ready, counts the timeout, pauses fetching and writes the same batch
	// again under the same deduplication token. It also bounds the ping
	// the sink sends every second while no batch is being written, so a
	// ClickHouse that hangs while the pipeline is idle makes the sink not
	// ready too (WANOTIFY_SINK_INSERT_TIMEOUT, default 5s). A batch of the
	// default size takes well under a second; raise it only with very
	// large batches.
	InsertTimeout time.Duration
	// MaxValueBytes cuts the raw record values kept in ingest_errors and
	// dead_letters (default 64 KiB).
	MaxValueBytes int
	// RetentionDays is how long events, notification state and the
	// provider message map are kept, by ClickHouse TTL
	// (WANOTIFY_SINK_RETENTION_DAYS, default 90; KeepForever, or 0 in the
	// environment, removes the TTL).
	RetentionDays int
	// ErrorRetentionDays is the same for dead_letters and ingest_errors
	// (WANOTIFY_SINK_ERROR_RETENTION_DAYS, default 30).
	ErrorRetentionDays int
	// StoreContentTenants lists the tenants whose message content
	// (template parameters, text bodies, metadata) is stored in
	// ClickHouse as sent; "*" is every tenant. Others' content is replaced
	// by a marker or a keyed hash; one-time codes are never stored
	// (WANOTIFY_SINK_STORE_CONTENT_TENANTS, default none; see
	// pkg/privacy).
	StoreContentTenants []string
	// ContentHashKey, when set, replaces content that is not stored by
	// its HMAC instead of a marker (WANOTIFY_PRIVACY_HASH_KEY, secret).
	ContentHashKey []byte
	// DrainTimeout bounds the last flushes when Run's context ends: the
	// batch being written and the one being filled, together (default
	// 10s). Records not written by then are consumed again later.
	DrainTimeout time.Duration
	// OnReady, if set, is told when the sink becomes ready (migrations
	// applied, consuming) and when it stops being ready (ClickHouse refuses
	// inserts, or Run returns). Not read from the environment.
	OnReady func(bool)
}

// Load reads the WANOTIFY_SINK_* variables. Unlike a Config written in
// code, where zero means the default, a zero or negative value set in the
// environment is an error.
func Load(e *config.Env) Config {
	c := Config{
		Group:           e.String("WANOTIFY_SINK_GROUP", DefaultGroup, "Kafka consumer group of the ClickHouse sink"),
		BatchRows:       e.Int("WANOTIFY_SINK_BATCH_ROWS", DefaultBatchRows, "records per ClickHouse insert: a batch is written when it holds this many"),
		BatchInterval:   e.Duration("WANOTIFY_SINK_BATCH_INTERVAL", DefaultBatchInterval, "longest a record waits in a batch before the batch is written"),
		RetryMaxBackoff: e.Duration("WANOTIFY_SINK_RETRY_MAX_BACKOFF", DefaultRetryMaxBackoff, "longest wait between attempts to write a batch ClickHouse refused"),
		RetentionDays:   e.Int("WANOTIFY_SINK_RETENTION_DAYS", DefaultRetentionDays, "days ClickHouse keeps events, notification state and the provider message map (TTL); 0 keeps them forever"),
		ErrorRetentionDays: e.Int("WANOTIFY_SINK_ERROR_RETENTION_DAYS", DefaultErrorRetentionDays,
			"days ClickHouse keeps dead_letters and ingest_errors (TTL); 0 keeps them forever"),
		StoreContentTenants: e.List("WANOTIFY_SINK_STORE_CONTENT_TENANTS", nil,
			"tenants whose message content (template parameters, text bodies, metadata) is stored in ClickHouse, comma-separated, * for all; one-time codes are never stored"),
		ContentHashKey: []byte(privacy.HashKey(e)),
		InsertTimeout:  e.Duration("WANOTIFY_SINK_INSERT_TIMEOUT", DefaultInsertTimeout, "longest ClickHouse may take to answer one batch insert (or the idle probe) before the sink reports not ready (and writes the batch again)"),
	}
	// In the environment 0 means forever, as it always has.
	if c.RetentionDays < 0 {
		e.Fail("WANOTIFY_SINK_RETENTION_DAYS", "%d is negative (0 keeps rows forever)", c.RetentionDays)
	}
	if c.ErrorRetentionDays < 0 {
		e.Fail("WANOTIFY_SINK_ERROR_RETENTION_DAYS", "%d is negative (0 keeps rows forever)", c.ErrorRetentionDays)
	}
	if c.RetentionDays == 0 {
		c.RetentionDays = KeepForever
	}
	if c.ErrorRetentionDays == 0 {
		c.ErrorRetentionDays = KeepForever
	}
	if c.Group == "" {
		e.Fail("WANOTIFY_SINK_GROUP", "must not be empty")
	}
	if c.BatchRows <= 0 {
		e.Fail("WANOTIFY_SINK_BATCH_ROWS", "%d is not a positive number of records", c.BatchRows)
	}
	if c.BatchInterval <= 0 {
		e.Fail("WANOTIFY_SINK_BATCH_INTERVAL", "%s is not a positive duration", c.BatchInterval)
	}
	if c.RetryMaxBackoff <= 0 {
		e.Fail("WANOTIFY_SINK_RETRY_MAX_BACKOFF", "%s is not a positive duration", c.RetryMaxBackoff)
	}
	if c.InsertTimeout <= 0 {
		e.Fail("WANOTIFY_SINK_INSERT_TIMEOUT", "%s is not a positive duration", c.InsertTimeout)
	}
	return c
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.RequestedTopic == "" {
		c.RequestedTopic = topics.Requested
	}
	if c.CriticalTopic == "" {
		c.CriticalTopic = topics.Critical
	}
	if c.BulkTopic == "" {
		c.BulkTopic = topics.Bulk
	}
	if c.StatusTopic == "" {
		c.StatusTopic = topics.Status
	}
	if c.DLQTopic == "" {
		c.DLQTopic = topics.DLQ
	}
	if c.BatchRows == 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = DefaultBatchInterval
	}
	if c.RetryInitialBackoff == 0 {
		c.RetryInitialBackoff = DefaultRetryInitialBackoff
	}
	if c.RetryMaxBackoff == 0 {
		c.RetryMaxBackoff = DefaultRetryMaxBackoff
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.RetentionDays == 0 {
		c.RetentionDays = DefaultRetentionDays
	}
	if c.ErrorRetentionDays == 0 {
		c.ErrorRetentionDays = DefaultErrorRetentionDays
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = DefaultInsertTimeout
	}
	return c
}

// Validate names every bad field by its environment variable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.BatchRows < 1 || c.BatchRows > 1_000_000 {
		errs = append(errs, fmt.Errorf("WANOTIFY_SINK_BATCH_ROWS: %d is not between 1 and 1000000", c.BatchRows))
	}
	if c.BatchInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("WANOTIFY_SINK_BATCH_INTERVAL: %s is below 1ms", c.BatchInterval))
	}
	if c.RetryMaxBackoff < c.RetryInitialBackoff {
		errs = append(errs, fmt.Errorf("WANOTIFY_SINK_RETRY_MAX_BACKOFF: %s is below the initial backoff %s", c.RetryMaxBackoff, c.RetryInitialBackoff))
	}
	if c.RetryInitialBackoff < 0 {
		errs = append(errs, errors.New("RetryInitialBackoff: negative"))
	}
	if c.RetentionDays != KeepForever && (c.RetentionDays < 1 || c.RetentionDays > 36500) {
		errs = append(errs, fmt.Errorf("WANOTIFY_SINK_RETENTION_DAYS: %d is not between 0 (forever) and 36500", c.RetentionDays))
	}
	if c.ErrorRetentionDays != KeepForever && (c.ErrorRetentionDays < 1 || c.ErrorRetentionDays > 36500) {
		errs = append(errs, fmt.Errorf("WANOTIFY_SINK_ERROR_RETENTION_DAYS: %d is not between 0 (forever) and 36500", c.ErrorRetentionDays))
	}
	for _, t := range c.StoreContentTenants {
		if t != "*" && !tenantName.MatchString(t) {
			errs = append(errs, fmt.Errorf("WANOTIFY_SINK_STORE_CONTENT_TENANTS: %q is not a tenant name or *", t))
		}
	}
	if c.MaxValueBytes < 0 {
		errs = append(errs, errors.New("MaxValueBytes: negative"))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, errors.New("DrainTimeout: negative"))
	}
	if c.InsertTimeout < 100*time.Millisecond || c.InsertTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("WANOTIFY_SINK_INSERT_TIMEOUT: %s is not between 100ms and 10m", c.InsertTimeout))
	}
	seen := map[string]bool{}
	for _, t := range []string{c.RequestedTopic, c.CriticalTopic, c.BulkTopic, c.StatusTopic, c.DLQTopic} {
		if seen[t] {
			errs = append(errs, fmt.Errorf("topics: %q is configured twice", t))
		}
		seen[t] = true
	}
	return errors.Join(errs...)
}

// tenantName is the tenant pattern of the notification schema.
var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
