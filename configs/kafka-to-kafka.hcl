# Kafka → Kafka, exactly once without Kafka transactions. The sink's
# "dedupe" mode adds the headers connectd-pipeline, connectd-batch and
# connectd-seq to every record it produces; when a batch is written again
# after a crash it reads the tail of the target partitions back and skips
# what it already wrote. That holds as long as this pipeline is the only
# writer of "orders-copy". Keys keep their partition (murmur2, as Java
# producers hash them); headers and timestamps are carried over.
#
#   scripts/testenv start kafka
#   connectd run configs/kafka-to-kafka.hcl
pipeline "kafka-to-kafka" {
  delivery = "exactly-once"

  source "kafka" {
    brokers          = ["127.0.0.1:9092"]
    topics           = ["orders"]
    starting_offsets = "earliest"
    group_id         = "connectd-orders-copy"
  }

  sink "kafka" {
    brokers          = ["127.0.0.1:9092"]
    topic            = "orders-copy" # or per record: topic_header = "route"
    mode             = "dedupe"      # "plain" is at-least-once
    compression      = "lz4"
    create_topics    = true          # with topic_partitions partitions
    topic_partitions = 3
  }

  batch {
    max_records = 5000
    max_wait    = "500ms"
  }

  checkpoint { dir = "state/kafka-to-kafka" }
}
