package conformance

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
)

// input is a known set of records: what the suite's generator produces with
// these settings, and so what every pipeline of the matrix must deliver.
type input struct {
	count, partitions, size int
}

// settings are the generator's parameters for this input.
func (in input) settings() map[string]any {
	return map[string]any{"count": in.count, "partitions": in.partitions, "size": in.size}
}

var (
	inputMu    sync.Mutex
	inputCache = map[input][][]byte{}
)

// values returns the values of the input's records, in the generator's
// order, by running the bundled generator in this process.
func (in input) values() ([][]byte, error) {
	inputMu.Lock()
	defer inputMu.Unlock()
	if v, ok := inputCache[in]; ok {
		return v, nil
	}
	cfg, err := sdk.NewConfig(generator.Spec, "conformance", in.settings())
	if err != nil {
		return nil, err
	}
	src := generator.Plugin.Source.New()
	ctx := context.Background()
	if err := src.Open(ctx, cfg); err != nil {
		return nil, err
	}
	defer src.Close(ctx)
	var out [][]byte
	from := sdk.Offsets{}
	lim := sdk.Limits{MaxRecords: 1000, MaxWait: time.Millisecond}
	for len(out) < in.count {
		rd, err := src.Read(ctx, from, lim)
		if err != nil {
			return nil, err
		}
		if len(rd.Records) == 0 {
			return nil, fmt.Errorf("generator stopped after %d of %d records", len(out), in.count)
		}
		for i := range rd.Records {
			out = append(out, append([]byte(nil), rd.Records[i].Value...))
		}
		from = from.Merge(rd.Until)
	}
	inputCache[in] = out
	return out, nil
}

// ids returns the ids of the input's records.
func (in input) ids() ([]string, error) {
	vals, err := in.values()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(vals))
	for i, v := range vals {
		ids[i] = ID(v)
	}
	return ids, nil
}
