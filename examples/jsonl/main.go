// Command connectd-plugin-jsonl is a worked example of a third-party connectd
// plugin: a sink that writes every batch as one JSON Lines file. It lives
// outside connectd's module, imports only connectd's sdk (and, in its tests,
// sdk/sdktest and the conformance suite), and is built as its own executable.
//
// Install it where connectd finds it (plugin_dir, or --plugin-dir):
//
//	go build -o plugins/connectd-plugin-jsonl .
package main

import "github.com/connectd/connectd/sdk"

func main() {
	sdk.Serve(Plugin)
}
