// Package pg holds what connectd's PostgreSQL code shares: reading a
// connection URL without ever printing its password, naming a server for
// messages, and connecting with a recognisable application_name.
package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ConnectTimeout bounds connecting when the URL sets no connect_timeout.
const ConnectTimeout = 15 * time.Second

// Config parses a connection URL (postgres://user:password@host:port/db?...)
// or key=value DSN, with the PG* environment variables and ~/.pgpass as
// libpq reads them. app is set as application_name (pg_stat_activity shows
// it) unless the URL sets one. The error never holds the URL: it may carry a
// password.
func Config(url, app string) (*pgx.ConnConfig, error) {
	if url == "" {
		return nil, errors.New("the connection URL is empty")
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			return nil, fmt.Errorf("the connection URL cannot be parsed (want postgres://user@host:5432/db or host=... dbname=...): %v", pe.Unwrap())
		}
		return nil, errors.New("the connection URL cannot be parsed (want postgres://user@host:5432/db or host=... dbname=...)")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok && app != "" {
		cfg.RuntimeParams["application_name"] = App(app)
	}
	return cfg, nil
}

// App returns what connectd's sessions put in application_name:
// "connectd <role> pid <pid> on <host>", cut to PostgreSQL's 63 bytes.
func App(role string) string {
	host, _ := os.Hostname()
	s := "connectd " + role + " pid " + strconv.Itoa(os.Getpid()) + " on " + host
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// Describe names the server and database of cfg for messages, without the
// password: "postgres://user@host:port/db".
func Describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Connect opens one connection. Its error names the server (Describe), never
// the password.
func Connect(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", Describe(cfg), Unwrap(err))
	}
	return conn, nil
}

// Unwrap returns the innermost useful part of a connect error (pgx repeats the
// user and database in front of it).
func Unwrap(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		return ce.Unwrap()
	}
	return err
}

// CreateSchema creates schema in tx unless it exists. It looks first, so
// that a role without the CREATE privilege on the database can use a schema
// someone else made.
func CreateSchema(ctx context.Context, tx pgx.Tx, schema string) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	return err
}
