// Package plugin finds connectd plugins and runs them as child processes:
// bundled ones by re-executing the connectd binary, third-party ones as
// executables named connectd-plugin-<name>; it hands the host a Source, Sink
// or Processor handle that speaks connector.v1 over go-plugin's gRPC with
// automatic mTLS. Records pass from Source to Sink as the chunks the source
// sent, never decoded; a Processor handle takes and returns decoded records,
// and checks and numbers what the processor sends back.
package plugin
