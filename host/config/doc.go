// Package config reads pipeline files and promises that every Pipeline it
// returns is complete and valid against its plugins' specs.
//
// A pipeline file is HCL (native syntax). It may hold several pipelines:
//
//	plugin_dir = "plugins"                 # optional: where connectd-plugin-<name> executables live
//	http {                                 # optional, at most one: run serves its API here (docs/api.md)
//	  addr  = "127.0.0.1:8083"             # required: host:port
//	  token = env("CONNECTD_TOKEN")        # needed for any address but loopback
//	}
//
//	pipeline "demo" {                      # name: [A-Za-z0-9_.-]+, unique in the file
//	  delivery = "exactly-once"            # required: "exactly-once", "at-least-once" or "at-most-once"
//
//	  source "file" {                      # exactly one source; its body is checked
//	    paths = ["in/*.txt"]               # against the plugin's sdk.Spec
//	  }
//	  transform "filter" {                 # any number, run in order: a built-in
//	    where = "value.amount > 100"       # (filter, set, drop_fields, rename, mask;
//	  }                                    # compiled here) or a processor plugin
//	  transform "split" { field = "items" }  # whose body is checked like a source's
//	  sink "file" {                        # exactly one sink
//	    dir  = "out"
//	    mode = "batch"
//	    password = env("OUT_PASSWORD")     # env("NAME") reads the environment;
//	  }                                    # unset is an error, the value is secret
//	  on_record_error = "dead_letter"      # optional: "fail" (default), "skip" or "dead_letter"
//	  dead_letter "file" {                 # with "dead_letter": the sink rejected records go to
//	    dir  = "rejected"
//	    mode = "batch"
//	  }
//
//	  batch {                              # optional
//	    max_records = 1000                 # > 0, default 10000
//	    max_bytes   = 0                    # >= 0, default 0 (no limit)
//	    max_wait    = "1s"                 # > 0, default "1s"
//	  }
//	  checkpoint {                         # optional
//	    store = "dir"                      # default "dir"; or "postgres" with url and schema
//	    dir   = "state/demo"               # default ".connectd/<pipeline name>"
//	  }
//	  timeouts {                           # optional: how long a plugin call may take before the
//	    read  = "45s"                      # host kills the plugin, restarts it and replays (each > 0);
//	    write = "5m"                       # defaults: read = max_wait + 30s, write = 60s, and 30s for
//	  }                                    # open, ack, last_committed, process, end, close
//	  restart {                            # optional: after a plugin failed (died, failed a call,
//	    attempts    = 5                    # did not answer in time): failures in a row before the run
//	    backoff     = "200ms"              # fails (>= 1), the first wait (> 0), doubling up to
//	    max_backoff = "10s"                # max_backoff (>= backoff); these are the defaults
//	  }
//	}
//
// Paths are kept as written (relative to the working directory). Unknown
// attributes and blocks are errors. Every problem is reported as an
// hcl.Diagnostic whose Subject is the file:line:column it is about; Format
// renders diagnostics with source snippets for people.
//
// Plugin parameters are converted from HCL values to the Go values
// sdk.NewConfig accepts: string, int64, float64, bool, duration (kept as the
// validated string, so Values stay JSON-safe) and []string. A parameter the spec
// declares Secret, or an attribute whose value comes from env(), is secret: it
// never appears in a diagnostic, an error, Plugin.String or Plugin.Redacted.
//
// The values are then checked against the rules of the spec's parameters
// (sdk.Param's Enum, Min, Max, Pattern) with sdk.NewConfig, the one place the
// sdk and the host check them. A value that breaks one is a diagnostic at the
// attribute's value, with "Did you mean" for a near miss of an enum; a secret
// value is neither shown nor used for a suggestion.
//
// A transform block names a built-in of host/transform, compiled here: an
// expression's syntax or type error is a diagnostic pointing into the
// expression. Any other name is a processor plugin (sdk.KindProcessor),
// looked up and checked like a source or sink.
//
// The delivery guarantee is checked against the plugins' capabilities for the
// configured values (see CheckDelivery, CheckPipeline): exactly-once needs a
// replayable source, an idempotent or transactional sink, deterministic
// processors, and an idempotent or transactional dead-letter sink.
package config
