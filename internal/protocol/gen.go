package protocol

// Regenerate the code in connectorv1/ and rawv1/ (needs protoc, protoc-gen-go
// and protoc-gen-go-grpc on PATH; see docs/protocol.md):
//go:generate protoc --go_out=connectorv1 --go_opt=paths=source_relative --go-grpc_out=connectorv1 --go-grpc_opt=paths=source_relative connector.proto
//go:generate protoc --go_out=rawv1 --go_opt=paths=source_relative --go_opt=Mconnector.proto=github.com/connectd/connectd/internal/protocol/connectorv1 raw.proto
