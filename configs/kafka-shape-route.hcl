# Kafka → filter + reshape + route → Kafka, exactly once. Orders below 100
# are dropped (their offsets still advance), each kept order gets a total,
# loses its internal notes, has its card number replaced by a keyed hash, and
# is routed to a topic per region through the Kafka sink's topic_header.
# A replayed batch is transformed into the same records: the built-ins have
# no clock and no randomness, so the sink's dedupe keeps exactly-once.
#
#   scripts/testenv start kafka
#   MASK_KEY=change-me connectd run configs/kafka-shape-route.hcl
pipeline "orders-by-region" {
  delivery = "exactly-once"

  source "kafka" {
    brokers          = ["127.0.0.1:9092"]
    topics           = ["orders"]
    starting_offsets = "earliest"
  }

  transform "filter" {
    where = "value.amount >= 100"
  }
  transform "set" {
    fields = {
      "total" = "value.amount * value.quantity"
    }
    headers = {
      "route" = "'orders-' + value.region"
    }
  }
  transform "drop_fields" {
    fields = ["notes"]
  }
  transform "mask" {
    fields = ["card"]
    key    = env("MASK_KEY")
  }

  sink "kafka" {
    brokers          = ["127.0.0.1:9092"]
    topic_header     = "route"
    mode             = "dedupe"
    create_topics    = true
    topic_partitions = 3
  }

  checkpoint { dir = "state/orders-by-region" }
}
