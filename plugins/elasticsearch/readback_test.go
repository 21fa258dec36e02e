package elasticsearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/plugins/elasticsearch"
	es8 "github.com/elastic/go-elasticsearch/v8"
)

// indexReader is the suite's read-back of the elasticsearch sink
// (conformance.Reader): it refreshes the pipeline's index (prefix + the
// pipeline's name) and returns the _source of every document the search API
// finds, with the official client rather than the plugin. It fails when the
// server counts more documents than the search returned.
func indexReader(prefix string) conformance.Reader {
	return func(ctx context.Context, p conformance.Pipeline) ([][]byte, error) {
		url, user, pass, ca := elasticsearch.ServerForTest()
		cfg := es8.Config{Addresses: []string{url}, Username: user, Password: pass}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, err
			}
			cfg.CACert = pem
		}
		es, err := es8.NewClient(cfg)
		if err != nil {
			return nil, err
		}
		index := prefix + p.Name
		res, err := es.Indices.Refresh(es.Indices.Refresh.WithContext(ctx), es.Indices.Refresh.WithIndex(index))
		if err != nil {
			return nil, fmt.Errorf("refresh %s: %w", index, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			return nil, nil // nothing written
		}
		if res.IsError() {
			return nil, fmt.Errorf("refresh %s: %s", index, res.Status())
		}
		q, _ := json.Marshal(map[string]any{"size": 10000, "track_total_hits": true, "query": map[string]any{"match_all": map[string]any{}}})
		res, err = es.Search(es.Search.WithContext(ctx), es.Search.WithIndex(index), es.Search.WithBody(bytes.NewReader(q)))
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", index, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil || res.IsError() {
			return nil, fmt.Errorf("search %s: %s %v: %s", index, res.Status(), err, body)
		}
		var out struct {
			Hits struct {
				Total struct {
					Value int `json:"value"`
				} `json:"total"`
				Hits []struct {
					Source json.RawMessage `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("search %s: %w", index, err)
		}
		if out.Hits.Total.Value != len(out.Hits.Hits) {
			return nil, fmt.Errorf("search %s: %d documents, %d returned", index, out.Hits.Total.Value, len(out.Hits.Hits))
		}
		vals := make([][]byte, len(out.Hits.Hits))
		for i, h := range out.Hits.Hits {
			vals[i] = h.Source
		}
		return vals, nil
	}
}
