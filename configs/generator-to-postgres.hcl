# Generator → PostgreSQL, exactly once with plain inserts. The postgres sink
# writes every batch in one transaction that also stores the pipeline's
# until offsets in connectd_offsets, and tells the host at start which batch
# it committed last: a crash anywhere ends with every record in the table
# once, with no unique key doing the work.
#
#   scripts/testenv start postgres      # prints PG_URL=postgres://connectd:<password>@127.0.0.1:<port>/connectd?...
# set url below to that address (or write url = env("PG_URL")), then:
#   connectd run --drain configs/generator-to-postgres.hcl
#   psql "$PG_URL" -c 'SELECT count(*), count(DISTINCT id) FROM events'
pipeline "generator-to-postgres" {
  delivery = "exactly-once"

  source "generator" {
    count      = 100000
    partitions = 4
    size       = 120
  }

  sink "postgres" {
    # A password belongs in env("PG_URL"), PGPASSWORD or ~/.pgpass; it is never logged.
    url    = "postgres://connectd@127.0.0.1:5432/connectd?sslmode=disable"
    table  = "events"
    mode   = "insert" # every batch is one transaction with its offsets
    create = true     # create the table from columns when it is missing
    columns = [
      "id text = value.id",
      "part int = value.partition",
      "pos bigint = value.offset",
      "payload jsonb = value",
      "at timestamptz = timestamp",
    ]
    # Without columns, a JSON object value's top-level fields go to the
    # columns of the same name of an existing table.
  }

  batch {
    max_records = 5000 # one transaction per batch; COPY from 16 records on
    max_wait    = "1s"
  }

  checkpoint { dir = "state/generator-to-postgres" }
}
