// Package chlocal runs a real ClickHouse server inside the current process,
// for local development, tests and CI only. Production talks to a real
// ClickHouse cluster and never uses this package.
//
// # Why this exists
//
// The machines wanotify is developed and tested on have no Docker, and the
// distribution's clickhouse-server package is far too old for
// clickhouse-go/v2 (DateTime64, Map, TTL, async inserts and the HTTP
// interface all fail against it). The npm package
// @chdb/lib-linux-x64-gnu@26.7.3-stable.1 ships a current ClickHouse
// (26.7.2.1) built as a shared library, libchdb.so. It has no server entry
// point, but its "clickhouse local" entry, chdb_query_cmdline, opens the real
// native TCP and HTTP listeners when asked to with
//
//	SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP
//
// and keeps serving while it runs interactively, reading further statements
// from standard input. Run therefore points file descriptor 0 at the read end
// of a pipe it owns, calls chdb_query_cmdline on a dedicated thread (the call
// blocks for the life of the server), and stops the server by writing
// "exit\n" to the pipe and closing it.
//
// The library is loaded with github.com/ebitengine/purego, so no C toolchain
// is needed (binaries build with CGO_ENABLED=0). scripts/fetch-clickhouse.sh
// downloads and verifies the library into a per-user cache; DefaultLibPath
// returns where that script puts it.
//
// # Limits
//
//   - One server per process: the library keeps global state, so Run may be
//     called only once in a process's lifetime.
//   - One process per data directory: ClickHouse locks DataDir/status.
//   - Run redirects the process-wide file descriptors 0 (standard input) and,
//     while the server runs, 1 (standard output, passed through with the
//     library's terminal escape codes removed); both are restored on return.
//   - Listeners bind to loopback unless Options.ListenHost says otherwise.
package chlocal
