// Package plugins lists the plugins bundled in the connectd binary; each lives
// in its own package below this one.
package plugins

import (
	"github.com/connectd/connectd/plugins/discard"
	"github.com/connectd/connectd/plugins/elasticsearch"
	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/plugins/kafka"
	"github.com/connectd/connectd/plugins/postgres"
	"github.com/connectd/connectd/plugins/split"
	"github.com/connectd/connectd/sdk"
)

// Bundled returns the bundled plugins by name.
func Bundled() map[string]sdk.Plugin {
	ps := []sdk.Plugin{generator.Plugin, file.Plugin, discard.Plugin, kafka.Plugin, postgres.Plugin, elasticsearch.Plugin, split.Plugin}
	m := make(map[string]sdk.Plugin, len(ps))
	for _, p := range ps {
		m[p.Name()] = p
	}
	return m
}
