package chlocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const readyPollInterval = 50 * time.Millisecond

// WaitReady polls ClickHouse's HTTP interface at httpAddr (host:port) until
// "SELECT 1" answers 1, or ctx is done. The returned error then wraps the
// last failure seen.
func WaitReady(ctx context.Context, httpAddr string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	u := "http://" + httpAddr + "/?query=" + url.QueryEscape("SELECT 1")
	return poll(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "1" {
			return fmt.Errorf("GET %s: %s: %q", u, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	})
}

// waitListening waits until the native port accepts connections and the HTTP
// interface answers a query.
func waitListening(ctx context.Context, tcpAddr, httpAddr string) error {
	var d net.Dialer
	err := poll(ctx, func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", tcpAddr)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return fmt.Errorf("native port %s: %w", tcpAddr, err)
	}
	if err := WaitReady(ctx, httpAddr); err != nil {
		return fmt.Errorf("http port %s: %w", httpAddr, err)
	}
	return nil
}

// poll calls try until it succeeds or ctx is done.
func poll(ctx context.Context, try func(context.Context) error) error {
	t := time.NewTicker(readyPollInterval)
	defer t.Stop()
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
}

// openConnections returns how many client connections, other than the one
// asking, the server at httpAddr has open.
func openConnections(httpAddr string) (int, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	q := "SELECT sum(value) FROM system.metrics WHERE metric IN " +
		"('TCPConnection', 'HTTPConnection', 'MySQLConnection', 'PostgreSQLConnection', 'InterserverConnection')"
	resp, err := client.Get("http://" + httpAddr + "/?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return 0, err
	}
	return n - 1, nil // this request's own connection
}
