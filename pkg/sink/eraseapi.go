package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wanotify/wanotify/pkg/config"
	"github.com/wanotify/wanotify/pkg/erasure"
)

// EraseAPIConfig is the operator's erase API, served by the sink (the
// service that owns the ClickHouse tables and writes to them) on a
// listener of its own, off the public ports. Off unless Addr is set.
type EraseAPIConfig struct {
	// Addr is the listen address (WANOTIFY_SINK_ERASE_ADDR; empty: off).
	Addr string
	// Tokens are the credentials allowed to erase
	// (WANOTIFY_SINK_ERASE_TOKENS, name:sha256hex entries).
	Tokens []erasure.Token
	// HashKey keys the audit's hash of an erased number
	// (WANOTIFY_PRIVACY_HASH_KEY).
	HashKey []byte
}

// LoadEraseAPI reads the erase API's variables.
func LoadEraseAPI(e *config.Env, hashKey []byte) EraseAPIConfig {
	c := EraseAPIConfig{
		Addr:    e.String("WANOTIFY_SINK_ERASE_ADDR", "", "listen address of the operator's erase API (POST /v1/erasures); empty: off. Keep it on an internal network"),
		HashKey: hashKey,
	}
	entries := e.List("WANOTIFY_SINK_ERASE_TOKENS", nil, "tokens of the erase API as name:sha256hex entries, comma-separated (hash a token with: printf %s \"$TOKEN\" | sha256sum); the name is recorded as the erasure's actor")
	toks, err := erasure.ParseTokens(entries)
	if err != nil {
		e.Fail("WANOTIFY_SINK_ERASE_TOKENS", "%v", err)
	}
	c.Tokens = toks
	return c
}

// Validate refuses an API that would be on with nobody allowed to use it.
func (c EraseAPIConfig) Validate() error {
	if c.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("WANOTIFY_SINK_ERASE_ADDR: %q is not host:port: %w", c.Addr, err)
	}
	if len(c.Tokens) == 0 {
		return errors.New("WANOTIFY_SINK_ERASE_TOKENS: the erase API (WANOTIFY_SINK_ERASE_ADDR) needs at least one token")
	}
	return nil
}

// serveEraseAPI serves the erase API until ctx ends. It has its own
// ClickHouse connection, so an erasure never waits behind a batch insert.
func serveEraseAPI(ctx context.Context, c EraseAPIConfig, ch *clickhouse.Options, log *slog.Logger) error {
	conn, err := clickhouse.Open(ch)
	if err != nil {
		return fmt.Errorf("erase API: clickhouse: %w", err)
	}
	defer conn.Close()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("erase API: WANOTIFY_SINK_ERASE_ADDR: %w", err)
	}
	srv := &http.Server{
		Handler:           erasure.Handler(erasure.New(conn, ch.Auth.Database, c.HashKey), c.Tokens, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// An erasure waits for ClickHouse's mutations.
		WriteTimeout: 10 * time.Minute,
		IdleTimeout:  time.Minute,
	}
	log.Info("erase API listening", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("erase API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-done
	return nil
}

// runWithEraseAPI runs the sink and the erase API together: either one
// failing stops both.
func runWithEraseAPI(ctx context.Context, s *Sink, c EraseAPIConfig, ch *clickhouse.Options, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	apiDone := make(chan error, 1)
	go func() {
		err := serveEraseAPI(ctx, c, ch, log)
		if err != nil {
			cancel()
		}
		apiDone <- err
	}()
	err := s.Run(ctx)
	cancel()
	return errors.Join(err, <-apiDone)
}
