# Kafka → PostgreSQL, exactly once, with the checkpoint in PostgreSQL too:
# nothing of the pipeline's state is on the host's disk, so connectd can run
# on a machine without durable local storage. Two hosts never run the
# pipeline at once: the checkpoint holds an advisory lock in the database.
#
# The kafka source plans each batch as an offset range per partition and can
# read it again exactly; the postgres sink commits each batch's rows and its
# until offsets in one transaction (upsert mode: the last record of an order
# id wins, and a replayed batch changes nothing).
#
#   scripts/testenv start kafka         # prints KAFKA_BROKERS=127.0.0.1:<port>
#   scripts/testenv start postgres      # prints PG_URL=postgres://...
# set brokers and both urls below (or use env("PG_URL")), produce JSON
# objects such as {"order_id":"o-1","customer":"c-7","total":12.5} to the
# topic "orders", then:
#   connectd run configs/kafka-to-postgres.hcl
#   connectd offsets show configs/kafka-to-postgres.hcl
pipeline "kafka-to-postgres" {
  delivery = "exactly-once"

  source "kafka" {
    brokers          = ["127.0.0.1:9092"]
    topics           = ["orders"]
    starting_offsets = "earliest"
    group_id         = "connectd-orders" # lag shows in Kafka's tools; nothing depends on it
  }

  sink "postgres" {
    url    = "postgres://connectd@127.0.0.1:5432/connectd?sslmode=disable"
    table  = "shop.orders"
    mode   = "upsert"
    key    = ["order_id"]
    create = true
    columns = [
      "order_id text = value.order_id",
      "customer text = value.customer",
      "total numeric(12,2) = value.total",
      "doc jsonb = value",
      "kafka_partition text = partition",
      "kafka_offset bigint = offset",
      "produced timestamptz = timestamp",
    ]
  }

  batch {
    max_records = 10000
    max_wait    = "1s"
  }

  checkpoint {
    store  = "postgres" # tables connectd_checkpoint and connectd_checkpoint_log
    url    = "postgres://connectd@127.0.0.1:5432/connectd?sslmode=disable"
    schema = "connectd"
  }
}
