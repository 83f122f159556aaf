// Package schemas embeds the JSON Schema documents that define every topic
// payload of wanotify and the OpenAPI document of its HTTP APIs. The files
// in this folder are the single source of truth: the Go types in
// pkg/contract validate against them at run time.
package schemas

import "embed"

// FS holds every schema, the OpenAPI document and the examples.
//
//go:embed *.json examples
var FS embed.FS

// File names of the versioned schemas.
const (
	NotificationRequestedV1 = "notification-requested.v1.json"
	NotificationStatusV1    = "notification-status.v1.json"
	FailureHeadersV1        = "failure-headers.v1.json"
)
