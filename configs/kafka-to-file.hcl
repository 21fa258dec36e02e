# Kafka → files, exactly once. The kafka source plans every batch as an
# offset range per partition ("orders/0", "orders/1", …) and can read it
# again exactly, so a crash anywhere ends with each record written once
# (the file sink's "batch" mode writes one file per batch by rename).
#
# Start a test broker and put a few records in it:
#   scripts/testenv start kafka         # prints KAFKA_BROKERS=127.0.0.1:<port>
# then set brokers below to that address and run:
#   connectd run --drain configs/kafka-to-file.hcl
#
# ACK commits each finished batch's offsets to the consumer group
# "connectd-orders", so `kafka-consumer-groups --describe` shows the lag;
# the source never joins that group and nothing depends on the commits.
pipeline "kafka-to-file" {
  delivery = "exactly-once"

  source "kafka" {
    brokers          = ["127.0.0.1:9092"]
    topics           = ["orders"]
    starting_offsets = "earliest" # or "latest", "group", {"orders":{"0":23,"1":-1}}
    group_id         = "connectd-orders"
    on_data_loss     = "fail"     # offsets removed by retention stop the pipeline

    # A secured cluster (secrets only through env()):
    # tls_ca_file    = "/etc/kafka/ca.pem"
    # sasl_mechanism = "PLAIN"
    # sasl_username  = "connectd"
    # sasl_password  = env("KAFKA_PASSWORD")
  }

  sink "file" {
    dir  = "out/kafka-to-file"
    mode = "batch"
  }

  batch {
    max_records = 10000
    max_bytes   = 16777216
    max_wait    = "1s"
  }

  checkpoint { dir = "state/kafka-to-file" }
}
