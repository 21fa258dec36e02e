package postgres_test

import (
	"context"
	"fmt"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/plugins/postgres"
	"github.com/jackc/pgx/v5"
)

// tableReader is the suite's read-back of the postgres sink
// (conformance.Reader): a plain SQL SELECT of the id column of the
// pipeline's table (schema.<pipeline name>), over a connection of its own,
// returning one value per row (the id, which conformance.ID takes whole).
func tableReader(schema string) conformance.Reader {
	return func(ctx context.Context, p conformance.Pipeline) ([][]byte, error) {
		conn, err := pgx.Connect(ctx, postgres.URLForTest())
		if err != nil {
			return nil, err
		}
		defer conn.Close(context.Background())
		table := pgx.Identifier{schema, p.Name}.Sanitize()
		rows, err := conn.Query(ctx, "SELECT id FROM "+table)
		if err != nil {
			return nil, fmt.Errorf("SELECT id FROM %s: %w", table, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("SELECT id FROM %s: %w", table, err)
		}
		out := make([][]byte, len(ids))
		for i, id := range ids {
			out[i] = []byte(id)
		}
		return out, nil
	}
}
