package pairrate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/dispatcher/pairrate"
	"github.com/wanotify/wanotify/pkg/testinfra"
	"github.com/wanotify/wanotify/pkg/topics"
)

func TestValueRoundTripAndRefusals(t *testing.T) {
	p := pairrate.Pair{Sender: "phone|id", Recipient: "+14155550123"}
	next := time.Unix(1_800_000_000, 123456789)
	got, at, err := pairrate.Decode(pairrate.RecordKey(p), pairrate.EncodeValue(next))
	if err != nil || got != p || !at.Equal(next) {
		t.Fatalf("round trip: %+v %v %v", got, at, err)
	}
	for name, kv := range map[string][2][]byte{
		"no separator":    {[]byte("snd+1415"), pairrate.EncodeValue(next)},
		"empty recipient": {[]byte("snd|"), pairrate.EncodeValue(next)},
		"short value":     {pairrate.RecordKey(p), []byte{1, 2}},
		"unknown version": {pairrate.RecordKey(p), append([]byte{9}, pairrate.EncodeValue(next)[1:]...)},
		"tombstone":       {pairrate.RecordKey(p), nil},
	} {
		if _, _, err := pairrate.Decode(kv[0], kv[1]); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestPacingSurvivesARebalance: one instance paces pairs and writes their
// times; it flushes as it gives its partitions up; the next owner restores
// those partitions and holds every pair until the time the first wrote.
func TestPacingSurvivesARebalance(t *testing.T) {
	const partitions = 4
	brokers := testinfra.KafkaWithTopics(t, partitions)
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An hour's interval: the test's own slowness cannot free a pair.
	cfg := pairrate.Config{Interval: time.Hour, Burst: 1}

	// Where ingest puts each recipient's notifications.requested records:
	// the pacing of its pairs must be in the same partition number.
	prod := testinfra.Client(t, brokers)
	home := map[string]int32{}
	var pairs []pairrate.Pair
	for i := range 40 {
		rcpt := fmt.Sprintf("+1202555%04d", i)
		r := prod.ProduceSync(ctx, &kgo.Record{Topic: topics.Requested, Key: []byte(rcpt), Value: []byte("{}")})
		if err := r.FirstErr(); err != nil {
			t.Fatal(err)
		}
		home[rcpt] = r[0].Record.Partition
		pairs = append(pairs, pairrate.Pair{Sender: "snd-a", Recipient: rcpt}, pairrate.Pair{Sender: "snd-b", Recipient: rcpt})
	}

	clog, err := pairrate.NewChangelog(opts, topics.Pacing, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := pairrate.New(cfg, clog)
	now := time.Now()
	for i, p := range pairs {
		if _, ok := a.Take(p, -1, now); !ok {
			t.Fatalf("instance A: %v held", p)
		}
		if i%3 == 0 {
			// The answer came later: the time moves on, written again.
			a.Sent(p, -1, now.Add(time.Duration(i)*time.Second))
		}
	}
	// One pair placed by the record's own partition, as the dispatcher
	// does when it knows it.
	odd := pairrate.Pair{Sender: "snd-a", Recipient: "+14155550123"}
	if _, ok := a.Take(odd, 3, now); !ok {
		t.Fatal("odd pair held")
	}
	// An unreadable record does not stop a restore.
	manual := testinfra.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := manual.ProduceSync(ctx, &kgo.Record{Topic: topics.Pacing, Partition: 0, Key: []byte("junk"), Value: []byte("?")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := clog.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clog.Close(ctx)
	if clog.Failed() != 0 {
		t.Fatalf("%d notes failed", clog.Failed())
	}

	// Instance B takes partitions 0 and 1 over; C takes 2 and 3.
	b, c := pairrate.New(cfg, nil), pairrate.New(cfg, nil)
	st, err := pairrate.Restore(ctx, pairrate.RestoreConfig{Opts: opts, Topic: topics.Pacing, Now: now}, []int32{0, 1}, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pairrate.Restore(ctx, pairrate.RestoreConfig{Opts: opts, Topic: topics.Pacing, Now: now}, []int32{2, 3}, c); err != nil {
		t.Fatal(err)
	}
	if st.Bad == 0 {
		t.Fatalf("restore stats %+v: the junk record of partition 0 was not seen", st)
	}
	check := func(p pairrate.Pair, part int32) {
		t.Helper()
		owner, other := b, c
		if part >= 2 {
			owner, other = c, b
		}
		want := a.Next(p)
		until, ok := owner.Take(p, -1, now.Add(time.Second))
		if ok || !until.Equal(want) {
			t.Fatalf("%v (partition %d): new owner says ok=%v until %v, want held until %v", p, part, ok, until, want)
		}
		if other.Next(p) != (time.Time{}) {
			t.Fatalf("%v (partition %d) was restored by the instance that does not own it", p, part)
		}
	}
	for _, p := range pairs {
		check(p, home[p.Recipient])
	}
	check(odd, 3)
	if st.Pairs == 0 {
		t.Fatalf("stats %+v count no pairs", st)
	}

	// Pairs already free when the partition is taken over are not
	// restored, and an empty partition is read at once.
	d := pairrate.New(cfg, nil)
	st, err = pairrate.Restore(ctx, pairrate.RestoreConfig{Opts: opts, Topic: topics.Pacing, Now: now.Add(2 * time.Hour)}, []int32{0, 1, 2, 3}, d)
	if err != nil || st.Pairs != 0 || d.Len() != 0 {
		t.Fatalf("restore two hours later: %+v, %d pairs, %v", st, d.Len(), err)
	}
	if _, err := pairrate.Restore(ctx, pairrate.RestoreConfig{Opts: opts, Topic: topics.Pacing}, []int32{7}, d); err == nil {
		t.Fatal("restoring a partition that does not exist succeeded")
	}
}
