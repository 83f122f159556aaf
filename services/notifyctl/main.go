// Command notifyctl operates a wanotify pipeline; see `notifyctl --help`.
package main

import (
	"os"

	"github.com/wanotify/wanotify/pkg/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
