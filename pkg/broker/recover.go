package broker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file exists only for kfake. Apache Kafka needs none of it: its
// transaction coordinator completes a crashed broker's open transactions
// with markers itself (WANOTIFY_BROKER_KIND=apache runs without this shim,
// and the chaos scenario on Apache Kafka kills the broker with no help
// from here; docs/kafka.md lists this among kfake's differences).
//
// After a crash (SIGKILL, power loss) the local kfake broker rebuilds each
// partition whose log grew since its last clean shutdown by replaying the
// log, and treats every transaction without a marker as aborted. It writes
// no abort marker for them, though, unlike Kafka's transaction
// coordinator, which completes such transactions with markers. A
// read_committed consumer told that a producer's transaction was aborted
// drops that producer's transactional batches until the producer's abort
// marker appears; without one it also drops the producer's next, committed
// transactions in the same fetch. recoverOpenTransactions closes the gap:
// before the broker serves clients it finds those transactions in the log
// and writes their abort markers, as Kafka would.

// openTxn is one producer's transaction left without a marker in one
// partition.
type openTxn struct {
	topic     string
	partition int32
	producer  int64
	epoch     int16
}

// A record batch (Kafka's RecordBatch v2) starts with its base offset and
// its length, which counts the bytes after it; its CRC-32C covers
// everything from the attributes on.
const (
	batchLengthEnd = 12 // base offset (8) + length (4)
	batchCRCStart  = 21 // offset of the attributes
	batchHeaderLen = 61

	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// findOpenTransactions lists the transactions the broker will treat as
// aborted by a crash when it loads dataDir: those in partitions it replays
// (no clean-shutdown snapshot matching the log) whose producer wrote
// transactional batches after its last marker.
func findOpenTransactions(dataDir string) ([]openTxn, error) {
	root := filepath.Join(dataDir, "partitions")
	dirs, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []openTxn
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		i := strings.LastIndexByte(d.Name(), '-')
		if i <= 0 {
			continue
		}
		topic, err := url.PathUnescape(d.Name()[:i])
		if err != nil {
			continue
		}
		part, err := strconv.ParseInt(d.Name()[i+1:], 10, 32)
		if err != nil {
			continue
		}
		open, err := openInPartition(filepath.Join(root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("partition %s-%d: %w", topic, part, err)
		}
		for pid, epoch := range open {
			out = append(out, openTxn{topic: topic, partition: int32(part), producer: pid, epoch: epoch})
		}
	}
	slices.SortFunc(out, func(a, b openTxn) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		if a.partition != b.partition {
			return int(a.partition - b.partition)
		}
		return int(a.producer - b.producer)
	})
	return out, nil
}

// openInPartition returns, for a partition directory the broker will
// replay, each producer with transactional batches after its last marker
// and the epoch of those batches.
func openInPartition(pdir string) (map[int64]int16, error) {
	entries, err := os.ReadDir(pdir)
	if err != nil {
		return nil, err
	}
	type seg struct {
		base int64
		size int64
	}
	var segs []seg
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".dat") {
			continue
		}
		base, err := strconv.ParseInt(strings.TrimSuffix(name, ".dat"), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		segs = append(segs, seg{base, info.Size()})
	}
	slices.SortFunc(segs, func(a, b seg) int { return int(a.base - b.base) })
	if len(segs) == 0 {
		return nil, nil
	}
	// A snapshot that matches the log means a clean shutdown: the broker
	// loads it, open transactions included, and replays nothing.
	if raw, err := os.ReadFile(filepath.Join(pdir, "snapshot.json")); err == nil {
		var snap struct {
			Segments []struct {
				BaseOffset int64 `json:"base_offset"`
				Size       int64 `json:"size"`
			} `json:"segments"`
		}
		if json.Unmarshal(raw, &snap) == nil && len(snap.Segments) == len(segs) {
			match := true
			for i, s := range snap.Segments {
				if s.BaseOffset != segs[i].base || s.Size != segs[i].size {
					match = false
					break
				}
			}
			if match {
				return nil, nil
			}
		}
	}
	open := map[int64]int16{}
	for _, s := range segs {
		raw, err := os.ReadFile(filepath.Join(pdir, strconv.FormatInt(s.base, 10)+".dat"))
		if err != nil {
			return nil, err
		}
		for len(raw) >= batchHeaderLen {
			n := int(int32(binary.BigEndian.Uint32(raw[batchLengthEnd-4:]))) + batchLengthEnd
			if n < batchHeaderLen || n > len(raw) {
				break // a torn write at the end: the broker drops it too
			}
			var rb kmsg.RecordBatch
			err := rb.ReadFrom(raw[:n])
			if err != nil || uint32(rb.CRC) != crc32.Checksum(raw[batchCRCStart:n], castagnoli) {
				break
			}
			raw = raw[n:]
			switch {
			case rb.Attributes&attrControl != 0:
				delete(open, rb.ProducerID)
			case rb.Attributes&attrTransactional != 0:
				open[rb.ProducerID] = rb.ProducerEpoch
			}
		}
	}
	return open, nil
}

// recoverOpenTransactions writes the abort markers of the transactions a
// crash left open, on a broker of its own on an ephemeral port that is
// then shut down cleanly, so the real one starts from a complete log.
func recoverOpenTransactions(ctx context.Context, dataDir string, log *slog.Logger) error {
	open, err := findOpenTransactions(dataDir)
	if err != nil || len(open) == 0 {
		return err
	}
	start := time.Now()
	cl, err := kfake.NewCluster(kfake.Ports(0), kfake.NumBrokers(1), kfake.DataDir(dataDir), kfake.WithLogger(slogLogger{log}))
	if err != nil {
		return err
	}
	defer cl.Close()
	client, err := kgo.NewClient(kgo.SeedBrokers(cl.ListenAddrs()...))
	if err != nil {
		return err
	}
	defer client.Close()

	req := kmsg.NewPtrWriteTxnMarkersRequest()
	byProducer := map[[2]int64]int{}
	for _, o := range open {
		k := [2]int64{o.producer, int64(o.epoch)}
		i, ok := byProducer[k]
		if !ok {
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.ProducerEpoch, m.Committed = o.producer, o.epoch, false
			req.Markers = append(req.Markers, m)
			i = len(req.Markers) - 1
			byProducer[k] = i
		}
		m := &req.Markers[i]
		j := slices.IndexFunc(m.Topics, func(t kmsg.WriteTxnMarkersRequestMarkerTopic) bool { return t.Topic == o.topic })
		if j < 0 {
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = o.topic
			m.Topics = append(m.Topics, t)
			j = len(m.Topics) - 1
		}
		m.Topics[j].Partitions = append(m.Topics[j].Partitions, o.partition)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(rctx, client)
	if err != nil {
		return fmt.Errorf("write abort markers: %w", err)
	}
	var errs []error
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					errs = append(errs, fmt.Errorf("abort marker for producer %d in %s-%d: error code %d", m.ProducerID, t.Topic, p.Partition, p.ErrorCode))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Warn("recovered after an unclean shutdown: aborted the transactions left open",
		"transactions", len(open), "elapsed", time.Since(start).String())
	return nil
}
