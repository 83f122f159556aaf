package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wanotify/wanotify/pkg/contract"
	"github.com/wanotify/wanotify/pkg/sdk"
	"github.com/wanotify/wanotify/pkg/topics"
)

// A service publishes a one-time password straight to Kafka. Its event
// type puts it in the critical lane, so it is written to
// notifications.critical, ahead of every campaign. The
// in-process broker stands in for the real cluster; in production, build
// the client options from kafkaconf.Load(...).Opts() so TLS, SASL and
// trace propagation come along.
func Example() {
	broker, err := kfake.NewCluster(kfake.SeedTopics(12, topics.Critical, topics.Requested, topics.Bulk))
	if err != nil {
		panic(err)
	}
	defer broker.Close()

	pub, err := sdk.Connect(sdk.Options{
		Tenant:        "acme",
		SourceService: "auth-api",
		DefaultSender: "acme-main",
	}, kgo.SeedBrokers(broker.ListenAddrs()...))
	if err != nil {
		panic(err)
	}
	defer pub.Close()

	req := sdk.Request{
		IdempotencyKey: "login-7781-otp", // a retry with this key is the same notification
		EventType:      "otp",
		UserID:         "u-1001",
		Recipient:      "+44 7100 900123",
		Template:       &contract.Template{Name: "otp_code", Language: "en_US", Parameters: []string{"482913"}},
		TTL:            5 * time.Minute, // useless after that: recorded as expired, not sent
	}
	id, err := pub.Publish(context.Background(), req)
	switch {
	case errors.Is(err, contract.ErrInvalid):
		fmt.Println("bad request:", err) // fix the request; retrying it unchanged fails again
	case errors.Is(err, sdk.ErrUnavailable):
		fmt.Println("not confirmed, retry:", err) // the retry gets the same id
	case err != nil:
		panic(err)
	default:
		fmt.Println("published", id)
	}

	again, _ := pub.Publish(context.Background(), req)
	fmt.Println("retry has the same id:", again == id)

	req.Recipient = "07700 900123"
	_, err = pub.Publish(context.Background(), req)
	fmt.Println(err)
	// Output:
	// published 7135be07-55f6-5979-afc5-7090580f2330
	// retry has the same id: true
	// invalid notification request: /recipient: must be a valid phone number in international E.164 form (e.g. +14155550123)
}
