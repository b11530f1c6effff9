package routingpb_test

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingpb"
)

// TestRoundTrip: a table survives the message, and the message's JSON form
// with proto names is the table's JSON form.
func TestRoundTrip(t *testing.T) {
	in := routing.Seed()
	in.SubdomainsAnyWorker = true
	if got := routingpb.FromProto(routingpb.ToProto(in)); !got.Equal(in) {
		t.Fatalf("round trip: %+v", got)
	}
	pj, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(routingpb.ToProto(in))
	if err != nil {
		t.Fatal(err)
	}
	var fromProto, fromTable any
	if err := json.Unmarshal(pj, &fromProto); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(in.MarshalIndent(), &fromTable); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromProto)
	b, _ := json.Marshal(fromTable)
	if string(a) != string(b) {
		t.Fatalf("JSON forms differ:\nproto %s\ntable %s", a, b)
	}
	if got := routingpb.FromProto(nil); !got.Equal(routing.Table{}) {
		t.Fatalf("FromProto(nil) = %+v", got)
	}
}
