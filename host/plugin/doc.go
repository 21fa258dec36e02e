// Package plugin finds connectd plugins and runs them as child processes:
// bundled ones by re-executing the connectd binary, third-party ones as
// executables named connectd-plugin-<name>; it hands the host a Source or Sink
// handle that speaks connector.v1 over go-plugin's gRPC with automatic mTLS.
// Records pass through the host as the chunks the source sent: the host never
// decodes a record.
package plugin
