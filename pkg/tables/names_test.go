package tables

import (
	"reflect"
	"testing"
)

// WithSuffix and DefaultNames list the names by hand; a name added to
// Names and missed in either would let a test's tables collide with the
// defaults on a shared server.
func TestEveryNameHasADefaultAndTakesTheSuffix(t *testing.T) {
	def := reflect.ValueOf(DefaultNames)
	sfx := reflect.ValueOf(DefaultNames.WithSuffix("x"))
	for i := range def.NumField() {
		f := def.Type().Field(i)
		if f.Type.Kind() != reflect.String {
			continue
		}
		name, with := def.Field(i).String(), sfx.Field(i).String()
		if name == "" {
			t.Errorf("DefaultNames.%s is empty", f.Name)
		}
		if with != name+"_x" {
			t.Errorf("WithSuffix: %s is %q, want %q", f.Name, with, name+"_x")
		}
	}
}
