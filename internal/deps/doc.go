// Package deps holds no code: its test checks, on the real import graph, the
// import rules that docs/architecture.md states (the sdk and the plugins never
// import the host, the host never imports a plugin, …).
package deps
