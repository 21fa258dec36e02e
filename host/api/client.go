package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// List asks the server at base (such as "http://127.0.0.1:8083") for its
// pipelines, as GET /v1/pipelines returns them, with the raw body. An error
// says what failed: the connection, the status with the server's message,
// or the body.
func List(ctx context.Context, base string) ([]Status, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(base, "/")+"/v1/pipelines", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("is connectd running with --http at %s? %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer of %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, body, fmt.Errorf("%s: %s: %s", req.URL, resp.Status, e.Error)
		}
		return nil, body, fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	var out struct {
		Pipelines []Status `json:"pipelines"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, body, fmt.Errorf("%s: not the connectd API's answer: %w", req.URL, err)
	}
	return out.Pipelines, body, nil
}

// WriteTable writes one line per pipeline (state, guarantee, plugins, last
// batch, records written, lag, restarts, last commit's age) and, below the
// table, each pipeline's error.
func WriteTable(w io.Writer, pipes []Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tSTATE\tDELIVERY\tSOURCE → SINK\tBATCH\tWRITTEN\tLAG\tRESTARTS\tLAST COMMIT")
	for _, p := range pipes {
		state := string(p.State)
		if p.PauseRequested && p.State != "paused" {
			state += " (pausing)"
		}
		batch := "-"
		if id := p.LastBatchID(); id > 0 {
			batch = fmt.Sprint(id)
		}
		lag := "-"
		if p.TotalLag != nil {
			lag = fmt.Sprint(*p.TotalLag)
		}
		var restarts []string
		for _, role := range sortedRoles(p.Restarts) {
			if n := p.Restarts[role]; n > 0 {
				restarts = append(restarts, fmt.Sprintf("%s %d", role, n))
			}
		}
		rs := "0"
		if len(restarts) > 0 {
			rs = strings.Join(restarts, ", ")
		}
		last := "-"
		if p.LastCommit != nil {
			last = now.Sub(*p.LastCommit).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s → %s\t%s\t%d\t%s\t%s\t%s\n", p.Name, state, p.Delivery, p.Source, p.Sink, batch, p.RecordsWritten, lag, rs, last)
	}
	tw.Flush()
	for _, p := range pipes {
		if p.Error != "" {
			fmt.Fprintf(w, "\npipeline %q: %s\n", p.Name, p.Error)
		}
	}
}

func sortedRoles(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
