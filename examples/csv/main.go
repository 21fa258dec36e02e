// Command connectd-plugin-csv is a worked example of a third-party connectd
// source: it reads CSV files, one record per row, and is replayable, so it
// can take part in exactly-once pipelines. It lives outside connectd's
// module, imports only connectd's sdk (and, in its tests, sdk/sdktest and
// the conformance suite), and is built as its own executable.
//
// docs/plugin-authors.md walks through it. Install it where connectd finds it
// (plugin_dir, or --plugin-dir):
//
//	go build -o plugins/connectd-plugin-csv .
package main

import "github.com/connectd/connectd/sdk"

func main() {
	sdk.Serve(Plugin)
}
