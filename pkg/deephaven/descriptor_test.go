package deephaven

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
	consolepb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/console"
)

// Our .proto files describe a subset of Deephaven's protocol under
// Deephaven's names. Every message, field, enum value and method we declare
// must exist in the server's own descriptors (read from the deephaven-core
// wheel) with the same number and type, or the server would misread us.
func TestProtosMatchDeephavenDescriptors(t *testing.T) {
	py := testenv.Python(t)
	out, err := exec.Command(py, filepath.Join(testenv.RepoRoot(t), "scripts", "proto_fields.py")).Output()
	if err != nil {
		t.Fatalf("scripts/proto_fields.py: %v", err)
	}
	var theirs struct {
		Messages map[string]map[string][2]any
		Methods  map[string][2]string
	}
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, fd := range []protoreflect.FileDescriptor{pb.File_backplane_backplane_proto, consolepb.File_console_console_proto} {
		var walk func(md protoreflect.MessageDescriptors)
		checkEnum := func(ed protoreflect.EnumDescriptor) {
			want, ok := theirs.Messages[string(ed.FullName())]
			if !ok {
				t.Errorf("enum %s does not exist in Deephaven's protocol", ed.FullName())
				return
			}
			for i := 0; i < ed.Values().Len(); i++ {
				v := ed.Values().Get(i)
				w, ok := want[string(v.Name())]
				if !ok || int(w[0].(float64)) != int(v.Number()) {
					t.Errorf("enum value %s.%s = %d; Deephaven has %v", ed.FullName(), v.Name(), v.Number(), w)
				}
				checked++
			}
		}
		walk = func(mds protoreflect.MessageDescriptors) {
			for i := 0; i < mds.Len(); i++ {
				md := mds.Get(i)
				want, ok := theirs.Messages[string(md.FullName())]
				if !ok {
					t.Errorf("message %s does not exist in Deephaven's protocol", md.FullName())
					continue
				}
				for j := 0; j < md.Fields().Len(); j++ {
					f := md.Fields().Get(j)
					w, ok := want[string(f.Name())]
					if !ok {
						t.Errorf("field %s does not exist in Deephaven's protocol", f.FullName())
						continue
					}
					typ := f.Kind().String()
					switch f.Kind() {
					case protoreflect.MessageKind, protoreflect.GroupKind:
						typ = string(f.Message().FullName())
					case protoreflect.EnumKind:
						typ = string(f.Enum().FullName())
					}
					if int(w[0].(float64)) != int(f.Number()) || w[1].(string) != typ {
						t.Errorf("field %s is %d %s; Deephaven has %v %v", f.FullName(), f.Number(), typ, w[0], w[1])
					}
					checked++
				}
				for k := 0; k < md.Enums().Len(); k++ {
					checkEnum(md.Enums().Get(k))
				}
				walk(md.Messages())
			}
		}
		walk(fd.Messages())
		for k := 0; k < fd.Enums().Len(); k++ {
			checkEnum(fd.Enums().Get(k))
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				m := sd.Methods().Get(j)
				key := string(sd.FullName()) + "/" + string(m.Name())
				w, ok := theirs.Methods[key]
				if !ok {
					t.Errorf("method %s does not exist in Deephaven's protocol", key)
					continue
				}
				if w[0] != string(m.Input().FullName()) || w[1] != string(m.Output().FullName()) {
					t.Errorf("method %s takes %s and returns %s; Deephaven: %v", key, m.Input().FullName(), m.Output().FullName(), w)
				}
				checked++
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d fields and methods checked; the walk is broken", checked)
	}
	t.Logf("%d fields, enum values and methods match Deephaven's descriptors", checked)
}
