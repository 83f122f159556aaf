// Package migrations holds the sink's ClickHouse schema as versioned .sql
// files, applied in order by pkg/chmigrate when the sink starts. The model
// is documented in the files themselves, starting with
// 0001_notification_events.sql.
package migrations

import "embed"

// FS holds every NNNN_name.sql file of this directory.
//
//go:embed *.sql
var FS embed.FS

// Dir is the directory of FS that holds the files.
const Dir = "."
