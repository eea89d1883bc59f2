// The interop peers (tests/interop/go/src) as a Go module against go-plugin
// v1.4.9, with go-plugin's own dependency versions. protoc-gen-go (plugins=grpc)
// comes from the github.com/golang/protobuf that go-plugin requires, so the
// generated stubs match the protobuf and grpc runtime they link against.
module interop

go 1.24

require (
	github.com/golang/protobuf v1.3.4
	github.com/hashicorp/go-hclog v0.14.1
	github.com/hashicorp/go-plugin v1.4.9
	google.golang.org/grpc v1.27.1
)

require (
	github.com/fatih/color v1.7.0 // indirect
	github.com/hashicorp/yamux v0.0.0-20180604194846-3520598351bb // indirect
	github.com/mattn/go-colorable v0.1.4 // indirect
	github.com/mattn/go-isatty v0.0.10 // indirect
	github.com/mitchellh/go-testing-interface v0.0.0-20171004221916-a61a99592b77 // indirect
	github.com/oklog/run v1.0.0 // indirect
	golang.org/x/net v0.0.0-20190311183353-d8887717615a // indirect
	golang.org/x/sys v0.0.0-20191008105621-543471e840be // indirect
	golang.org/x/text v0.3.0 // indirect
	google.golang.org/genproto v0.0.0-20190819201941-24fa4b261c55 // indirect
)

tool github.com/golang/protobuf/protoc-gen-go
