// Package valueexpr reduces a Prometheus alerting rule's expression to the
// vector whose value made the alert fire, and says how an alert's labels
// relate to that vector's series.
//
// An alerting rule such as
//
//	node_load1 > 4 unless on(instance) maintenance == 1
//
// only returns series while it fires: polling it tells nothing about how
// close a series is to firing or how it recovered. Prometheus reports as the
// alert's value the value of the vector that the top-level filters let
// through, here node_load1. That vector, the value expression, goes on below
// the threshold and can be polled at any time.
package valueexpr

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/prometheus/promql/parser"
)

// Result is what a rule expression reduces to.
type Result struct {
	// Expr is the value expression, printed by Prometheus's parser: the
	// vector whose value made the alert fire. When Reduced is false it is
	// the whole rule expression (whose value is still what Prometheus
	// reports as $value while the alert fires), or "" when Poll is false.
	// It never has outer parentheses.
	Expr string
	// Reduced reports whether Expr is a part of the rule's expression (a
	// series that goes on below the threshold) rather than the whole
	// expression.
	Reduced bool
	// Poll reports whether polling Expr yields a meaningful value (false
	// for absent() and absent_over_time(), whose value is always 1).
	Poll bool
	// Derivation says, for people reading the prometheus_rules table, how
	// Expr was derived ("left side of and, then vector side of >") or why
	// the expression was kept whole or not polled ("top-level or: either
	// side may fire"). The texts are short, stable and lower-case.
	Derivation string
	// ExtraLabels are label names the alert carries that the value
	// expression's series do not: the include list of a group_left(...) on
	// a comparison that was reduced away (the alert's labels come from the
	// left side plus these). Sorted, no duplicates; nil if none.
	ExtraLabels []string
	// OnlyLabels, when not nil, are the only labels that identify the value
	// expression's series and the alert alike: the on(...) list of a
	// comparison that was reduced to its left side and whose result keeps
	// the labels of the other side (group_right) or only the on(...)
	// labels (one-to-one matching). Sorted, no duplicates; empty but not
	// nil for on(), where the value expression has a single series that
	// matches every alert of the rule.
	OnlyLabels []string
}

// Derivations of expressions that are kept whole or not polled. They are
// shown to people and compared by tests, so they must not change lightly.
const (
	derivNoComparison = "no filtering comparison at the top"
	derivOr           = "top-level or: either side may fire"
	derivBool         = "bool comparison: the value is 0 or 1"
	derivGroupRight   = "group_right with ignoring(): the left side's series cannot be matched to the alert"
	derivIgnoring     = "one-to-one ignoring(): the alert lacks labels of the left side"
	derivNested       = "nested vector matching: the alert's labels cannot be traced to the left side"
)

// maxQuoted bounds how much of an expression an error message quotes: rule
// expressions can run to kilobytes, and the parser's error already gives the
// position of the problem.
const maxQuoted = 200

// Reduce parses a rule expression and reduces it. It returns an error only
// when the expression does not parse (the error names the problem).
func Reduce(expr string) (Result, error) {
	// Experimental functions are behind a feature flag in Prometheus, and
	// rules that use them are only loaded where it is set: accept them
	// rather than failing on rules that Prometheus evaluates.
	p := parser.NewParser(parser.Options{EnableExperimentalFunctions: true})
	node, err := p.ParseExpr(expr)
	if err != nil {
		return Result{}, fmt.Errorf("valueexpr: parse %q: %w", abbreviate(expr, maxQuoted), err)
	}
	return reduce(node), nil
}

// reduce walks down from the top of a rule expression to its value
// expression, keeping track of how the alert's labels relate to the series
// of the node it has reached.
func reduce(whole parser.Expr) Result {
	var (
		node  = unparen(whole)
		steps []string
		// extra and only describe the alert's labels relative to the series
		// of node, as Result.ExtraLabels and Result.OnlyLabels do.
		extra []string
		only  []string
	)
	// keep returns the whole expression, for a reason found after steps.
	keep := func(reason string) Result {
		return Result{
			Expr:       unparen(whole).String(),
			Poll:       true,
			Derivation: join(steps, reason),
		}
	}

	for {
		if name, ok := absent(node); ok {
			return Result{Derivation: join(steps, name+"(): the value is always 1")}
		}
		b, ok := node.(*parser.BinaryExpr)
		if !ok {
			break
		}
		if b.Op == parser.LAND || b.Op == parser.LUNLESS {
			// Both report the samples of their left side, labels and all.
			steps = append(steps, "left side of "+b.Op.String())
			node = unparen(b.LHS)
			continue
		}
		if !b.Op.IsComparisonOperator() {
			break
		}
		if b.ReturnBool {
			if len(steps) == 0 {
				return keep(derivBool)
			}
			// A bool comparison below a filter is a value like any other.
			break
		}

		lhsVector := b.LHS.Type() == parser.ValueTypeVector
		rhsVector := b.RHS.Type() == parser.ValueTypeVector
		if !lhsVector || !rhsVector {
			// The parser rejects comparisons of two scalars without bool,
			// so exactly one side is a vector: the one that is filtered.
			steps = append(steps, "vector side of "+b.Op.String())
			if lhsVector {
				node = unparen(b.LHS)
			} else {
				node = unparen(b.RHS)
			}
			continue
		}

		// Between two vectors a filtering comparison keeps the samples of
		// its left side, but its labels depend on the matching. Where more
		// than one comparison on the way down changes them, only the
		// combinations whose effect on the labels is plain are followed.
		if vm := b.VectorMatching; vm != nil {
			switch {
			case vm.Card == parser.CardManyToOne:
				// The result has the left side's labels and the included
				// ones from the right side.
				if only == nil {
					extra = sortedUnion(extra, vm.Include)
				} else if overlaps(only, vm.Include) {
					return keep(derivNested)
				}
			case !vm.On && len(vm.MatchingLabels) > 0:
				// The result has the labels of the right side (group_right)
				// or those of the left side but the ignored ones
				// (one-to-one): either way some of the left side's labels
				// are not the alert's, and which cannot be told from the
				// expression. (An empty ignoring() changes nothing.)
				if vm.Card == parser.CardOneToMany {
					return keep(derivGroupRight)
				}
				return keep(derivIgnoring)
			case vm.On:
				// The result has the labels of the right side
				// (group_right) or only the on(...) labels (one-to-one):
				// either way the left side's series match it by the
				// on(...) labels alone.
				if only != nil || overlaps(extra, vm.MatchingLabels) {
					return keep(derivNested)
				}
				only = append([]string{}, vm.MatchingLabels...)
				slices.Sort(only)
				only = slices.Compact(only)
			}
		}
		steps = append(steps, "left side of "+b.Op.String())
		node = unparen(b.LHS)
	}

	if len(steps) == 0 {
		if b, ok := node.(*parser.BinaryExpr); ok && b.Op == parser.LOR {
			return keep(derivOr)
		}
		return keep(derivNoComparison)
	}
	return Result{
		Expr:        node.String(),
		Reduced:     true,
		Poll:        true,
		Derivation:  strings.Join(steps, ", then "),
		ExtraLabels: nilIfEmpty(extra),
		OnlyLabels:  only,
	}
}

// overlaps reports whether a and b have a label in common.
func overlaps(a, b []string) bool {
	return slices.ContainsFunc(a, func(l string) bool { return slices.Contains(b, l) })
}

// sortedUnion returns the sorted union of a and b without duplicates.
func sortedUnion(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// nilIfEmpty returns s, or nil if s is empty.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// absent reports whether node calls absent() or absent_over_time(), whose
// value is 1 whenever they return anything, and which of them.
func absent(node parser.Expr) (string, bool) {
	call, ok := node.(*parser.Call)
	if !ok || call.Func == nil {
		return "", false
	}
	switch call.Func.Name {
	case "absent", "absent_over_time":
		return call.Func.Name, true
	}
	return "", false
}

// unparen strips the parentheses around node: they change nothing about
// its value, and the value expression is printed without them.
func unparen(node parser.Expr) parser.Expr {
	for {
		p, ok := node.(*parser.ParenExpr)
		if !ok {
			return node
		}
		node = p.Expr
	}
}

// join appends reason to the steps taken to reach it.
func join(steps []string, reason string) string {
	return strings.Join(append(slices.Clip(steps), reason), ", then ")
}

// abbreviate returns s cut to at most n bytes, on a rune boundary, with an
// ellipsis when anything was cut.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
