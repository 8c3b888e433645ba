package valueexpr

import (
	"slices"
	"testing"
)

// FuzzReduce checks that Reduce never panics, and that whatever it accepts
// reduces to a Result that keeps its promises: an Expr that parses again,
// exactly when it is to be polled, and labels sorted without duplicates.
func FuzzReduce(f *testing.F) {
	for _, rule := range corpus {
		f.Add(rule.expr)
	}
	for _, tc := range synthetic {
		f.Add(tc.expr)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		r, err := Reduce(expr)
		if err != nil {
			return
		}
		if r.Expr != "" {
			if _, err := Reduce(r.Expr); err != nil {
				t.Errorf("Reduce(%q).Expr = %q does not parse: %v", expr, r.Expr, err)
			}
		}
		switch {
		case r.Derivation == "":
			t.Errorf("Reduce(%q) has no Derivation", expr)
		case r.Poll == (r.Expr == ""):
			t.Errorf("Reduce(%q) = {Expr: %q, Poll: %t}, want an Expr exactly when polled", expr, r.Expr, r.Poll)
		case r.Reduced && !r.Poll:
			t.Errorf("Reduce(%q) is reduced but not polled", expr)
		}
		for _, labels := range [][]string{r.ExtraLabels, r.OnlyLabels} {
			if !slices.IsSorted(labels) || len(slices.Compact(slices.Clone(labels))) != len(labels) {
				t.Errorf("Reduce(%q) labels %q are not sorted and unique", expr, labels)
			}
		}
	})
}
