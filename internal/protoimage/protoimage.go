// Package protoimage holds the buf image of proto/ (dotdo.binpb, made by
// `make generate`), whose descriptors keep their source info, that is the
// doc comments. The server's reflection service answers from it, so that
// `grpcurl describe` shows the API's documentation; Go's generated
// descriptors drop comments.
package protoimage

import (
	_ "embed"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

//go:embed dotdo.binpb
var image []byte

var files = sync.OnceValues(func() (*protoregistry.Files, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(image, &set); err != nil {
		return nil, fmt.Errorf("protoimage: %w", err)
	}
	f, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("protoimage: %w", err)
	}
	return f, nil
})

// Files returns the image's files with their source info.
func Files() (*protoregistry.Files, error) { return files() }

// Resolver returns a descriptor resolver that answers from the image first
// (with comments) and from the global registry for everything else, such as
// the health and reflection services. If the image cannot be read, it is the
// global registry alone.
func Resolver() protodesc.Resolver {
	f, err := Files()
	if err != nil {
		return protoregistry.GlobalFiles
	}
	return chain{f, protoregistry.GlobalFiles}
}

type chain []*protoregistry.Files

func (c chain) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	for _, f := range c {
		if d, err := f.FindFileByPath(path); err == nil {
			return d, nil
		}
	}
	return nil, protoregistry.NotFound
}

func (c chain) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	for _, f := range c {
		if d, err := f.FindDescriptorByName(name); err == nil {
			return d, nil
		}
	}
	return nil, protoregistry.NotFound
}
