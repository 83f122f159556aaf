package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/wanotify/wanotify/pkg/chmigrate"
	"github.com/wanotify/wanotify/pkg/sink/migrations"
)

func main() {
	ctx := context.Background()
	o := &clickhouse.Options{Addr: []string{"127.0.0.1:19000"}, Auth: clickhouse.Auth{Database: os.Args[1]}}
	if err := chmigrate.EnsureDatabase(ctx, o); err != nil { panic(err) }
	conn, err := clickhouse.Open(o)
	if err != nil { panic(err) }
	ms, err := chmigrate.Load(migrations.FS, migrations.Dir)
	if err != nil { panic(err) }
	res, err := chmigrate.Apply(ctx, conn, ms, nil)
	fmt.Printf("%+v %v\n", res, err)
}
