package valueexpr

import (
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// reprint returns expr as Prometheus prints it, without outer parentheses.
func reprint(t testing.TB, expr string) string {
	t.Helper()
	node, err := parser.NewParser(parser.Options{EnableExperimentalFunctions: true}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	return unparen(node).String()
}

func TestReduceCorpus(t *testing.T) {
	for _, rule := range corpus {
		t.Run(rule.alert, func(t *testing.T) {
			got, err := Reduce(rule.expr)
			if err != nil {
				t.Fatalf("Reduce: %v (source %s)", err, rule.source)
			}
			if got.Derivation == "" {
				t.Errorf("Derivation is empty")
			}
			var want Result
			switch {
			case rule.want != "":
				want = Result{Expr: reprint(t, rule.want), Reduced: true, Poll: true}
			case rule.absent:
				want = Result{}
			default:
				want = Result{Expr: reprint(t, rule.expr), Poll: true}
			}
			if got.Expr != want.Expr || got.Reduced != want.Reduced || got.Poll != want.Poll {
				t.Errorf("Reduce() = {Expr: %q, Reduced: %t, Poll: %t} (%s), want {Expr: %q, Reduced: %t, Poll: %t}\nsource: %s",
					got.Expr, got.Reduced, got.Poll, got.Derivation, want.Expr, want.Reduced, want.Poll, rule.source)
			}
		})
	}
}

// synthetic are rule shapes that the public mixins in the corpus lack, and
// the shapes whose labels do not simply carry over to the alert.
var synthetic = []struct {
	expr string
	want Result
}{
	// Comparisons with a scalar, which is never the value.
	{
		expr: `0 < up`,
		want: Result{Expr: `up`, Reduced: true, Poll: true, Derivation: "vector side of <"},
	},
	{
		expr: `time() - x > 100`,
		want: Result{Expr: `time() - x`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},
	{
		expr: `(rate(x[5m])) > (0.5)`,
		want: Result{Expr: `rate(x[5m])`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},
	{
		expr: `(((up)))> 1`,
		want: Result{Expr: `up`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},
	{
		expr: "# Comments are no part of the expression.\nup > 0",
		want: Result{Expr: `up`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},
	{
		expr: `sum by (job) (rate(x[5m])) > 0`,
		want: Result{Expr: `sum by (job) (rate(x[5m]))`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},
	{
		expr: `label_replace(up, "foo", "$1", "instance", "(.*)") > 0`,
		want: Result{Expr: `label_replace(up, "foo", "$1", "instance", "(.*)")`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},
	{
		// Experimental functions are accepted.
		expr: `sort_by_label(up, "instance") > 0`,
		want: Result{Expr: `sort_by_label(up, "instance")`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},
	{
		expr: `limitk(2, up) > 0`,
		want: Result{Expr: `limitk(2, up)`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},

	// Chained comparisons.
	{
		expr: `up > 0 > -1`,
		want: Result{Expr: `up`, Reduced: true, Poll: true, Derivation: "vector side of >, then vector side of >"},
	},
	{
		expr: `(a > 0) > 1`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "vector side of >, then vector side of >"},
	},
	{
		expr: `a > b < 1`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "vector side of <, then left side of >"},
	},
	{
		// Below a filter, a bool comparison is a value like any other.
		expr: `(a > bool 0) > 0`,
		want: Result{Expr: `a > bool 0`, Reduced: true, Poll: true, Derivation: "vector side of >"},
	},

	// and, unless.
	{
		expr: `rate(a[5m]) > 0 unless rate(b[5m]) > 0`,
		want: Result{Expr: `rate(a[5m])`, Reduced: true, Poll: true, Derivation: "left side of unless, then vector side of >"},
	},
	{
		expr: `node_load1 > 0 unless on(instance) readonly == 1`,
		want: Result{Expr: `node_load1`, Reduced: true, Poll: true, Derivation: "left side of unless, then vector side of >"},
	},
	{
		expr: `x > 1 and on(i) y`,
		want: Result{Expr: `x`, Reduced: true, Poll: true, Derivation: "left side of and, then vector side of >"},
	},
	{
		expr: `a and b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of and"},
	},
	{
		expr: `(a > 1 or b) and c`,
		want: Result{Expr: `a > 1 or b`, Reduced: true, Poll: true, Derivation: "left side of and"},
	},
	{
		expr: `a > 1 and b > 2 unless c`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of unless, then left side of and, then vector side of >"},
	},
	{
		expr: `x and absent(y)`,
		want: Result{Expr: `x`, Reduced: true, Poll: true, Derivation: "left side of and"},
	},

	// Kept whole.
	{
		expr: `up == bool 1`,
		want: Result{Expr: `up == bool 1`, Poll: true, Derivation: "bool comparison: the value is 0 or 1"},
	},
	{
		expr: `(a > bool b)`,
		want: Result{Expr: `a > bool b`, Poll: true, Derivation: "bool comparison: the value is 0 or 1"},
	},
	{
		expr: `a or b`,
		want: Result{Expr: `a or b`, Poll: true, Derivation: "top-level or: either side may fire"},
	},
	{
		expr: `(a > 1) or b`,
		want: Result{Expr: `(a > 1) or b`, Poll: true, Derivation: "top-level or: either side may fire"},
	},
	{
		expr: `vector(1)`,
		want: Result{Expr: `vector(1)`, Poll: true, Derivation: "no filtering comparison at the top"},
	},
	{
		expr: `sum(x > 1)`,
		want: Result{Expr: `sum(x > 1)`, Poll: true, Derivation: "no filtering comparison at the top"},
	},
	{
		expr: `label_replace(x > 0, "foo", "$1", "instance", "(.*)")`,
		want: Result{Expr: `label_replace(x > 0, "foo", "$1", "instance", "(.*)")`, Poll: true, Derivation: "no filtering comparison at the top"},
	},
	{
		expr: `(a + b)`,
		want: Result{Expr: `a + b`, Poll: true, Derivation: "no filtering comparison at the top"},
	},

	// absent() and absent_over_time(), whose value is always 1.
	{
		expr: `absent(x)`,
		want: Result{Derivation: "absent(): the value is always 1"},
	},
	{
		expr: `absent_over_time(x[5m])`,
		want: Result{Derivation: "absent_over_time(): the value is always 1"},
	},
	{
		expr: `absent(x) == 1`,
		want: Result{Derivation: "vector side of ==, then absent(): the value is always 1"},
	},
	{
		expr: `(absent(x)) and y`,
		want: Result{Derivation: "left side of and, then absent(): the value is always 1"},
	},

	// Vector matching that changes the alert's labels.
	{
		expr: `a > on(instance) group_left(nodename, machine) b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >", ExtraLabels: []string{"machine", "nodename"}},
	},
	{
		expr: `a > on(instance) group_left b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >"},
	},
	{
		expr: `a > ignoring(mode) group_left(x) b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >", ExtraLabels: []string{"x"}},
	},
	{
		expr: `a > on(instance, job) group_right(x) b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >", OnlyLabels: []string{"instance", "job"}},
	},
	{
		expr: `a > on(job, instance, job) group_right b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >", OnlyLabels: []string{"instance", "job"}},
	},
	{
		expr: `a > on() group_right b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >", OnlyLabels: []string{}},
	},
	{
		expr: `a > ignoring(mode) group_right b`,
		want: Result{Expr: `a > ignoring (mode) group_right () b`, Poll: true, Derivation: "group_right with ignoring(): the left side's series cannot be matched to the alert"},
	},
	{
		expr: `(a > ignoring(mode) group_right b) and c`,
		want: Result{Expr: `(a > ignoring (mode) group_right () b) and c`, Poll: true, Derivation: "left side of and, then group_right with ignoring(): the left side's series cannot be matched to the alert"},
	},
	{
		// With ignoring() both sides match on all their labels.
		expr: `a > ignoring() group_right b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >"},
	},
	{
		// One-to-one matching keeps only the on(...) labels...
		expr: `a > on(instance) b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >", OnlyLabels: []string{"instance"}},
	},
	{
		expr: `a > on() b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >", OnlyLabels: []string{}},
	},
	{
		// ...and drops the ignored ones.
		expr: `a > ignoring(job) b`,
		want: Result{Expr: `a > ignoring (job) b`, Poll: true, Derivation: "one-to-one ignoring(): the alert lacks labels of the left side"},
	},
	{
		// and keeps the left side's labels whatever its matching.
		expr: `a > 0 and on(instance) b`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of and, then vector side of >"},
	},
	{
		expr: `(a > on(i) group_right b) > on(i) group_left(n) c`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >, then left side of >", ExtraLabels: []string{"n"}, OnlyLabels: []string{"i"}},
	},
	{
		expr: `(a > on(i) group_left(n) b) > on(i) group_left(m, n) c`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >, then left side of >", ExtraLabels: []string{"m", "n"}},
	},
	{
		// The alert keeps only i, which a's series carry.
		expr: `(a > on(i) group_left(n) b) > on(i) c`,
		want: Result{Expr: `a`, Reduced: true, Poll: true, Derivation: "left side of >, then left side of >", OnlyLabels: []string{"i"}},
	},
	{
		// The alert's n may be c's, not a's.
		expr: `(a > on(i, n) b) > ignoring(m) group_left(n) c`,
		want: Result{Expr: `(a > on (i, n) b) > ignoring (m) group_left (n) c`, Poll: true, Derivation: "left side of >, then nested vector matching: the alert's labels cannot be traced to the left side"},
	},
	{
		expr: `(a > ignoring(m) group_left(n) b) > on(i, n) c`,
		want: Result{Expr: `(a > ignoring (m) group_left (n) b) > on (i, n) c`, Poll: true, Derivation: "left side of >, then nested vector matching: the alert's labels cannot be traced to the left side"},
	},
	{
		// a may have several series for an i that c matches.
		expr: `(a > on(i, k) b) > on(i) c`,
		want: Result{Expr: `(a > on (i, k) b) > on (i) c`, Poll: true, Derivation: "left side of >, then nested vector matching: the alert's labels cannot be traced to the left side"},
	},
}

func TestReduce(t *testing.T) {
	for _, tc := range synthetic {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := Reduce(tc.expr)
			if err != nil {
				t.Fatalf("Reduce: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Reduce() =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestReduceParseError(t *testing.T) {
	for _, tc := range []struct {
		expr, wantErr string
	}{
		{`up >`, "unexpected end of input"},
		{`sum(up`, "unclosed left parenthesis"},
		{`rate(up)`, "expected type range vector"},
		{`1 > 2`, "comparisons between scalars must use BOOL modifier"},
		{`up > fill(0) up`, "fill"},
		{``, "no expression found in input"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := Reduce(tc.expr)
			if err == nil {
				t.Fatalf("Reduce() = %#v, want an error", got)
			}
			if !strings.HasPrefix(err.Error(), "valueexpr: parse ") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Reduce() error = %q, want one that says %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, Result{}) {
				t.Errorf("Reduce() = %#v with the error, want the zero Result", got)
			}
		})
	}
}

func TestReduceParseErrorAbbreviates(t *testing.T) {
	expr := strings.Repeat("a + ", 1000) + "ü >"
	_, err := Reduce(expr)
	if err == nil {
		t.Fatal("Reduce() returned no error")
	}
	if len(err.Error()) > 400 {
		t.Errorf("error is %d bytes long: %q", len(err.Error()), err)
	}
	if !strings.Contains(err.Error(), "a + a + …") {
		t.Errorf("error %q does not quote the start of the expression", err)
	}
}

func TestAbbreviate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"aüb", 2, "a…"}, // ü takes two bytes: it is not cut in half.
		{"aüb", 3, "aü…"},
		{"", 0, ""},
	} {
		if got := abbreviate(tc.s, tc.n); got != tc.want {
			t.Errorf("abbreviate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// TestReduceStable checks that a value expression is printed so that it
// parses back to itself, and has no filter left at its top: reducing it
// again keeps it whole. So does reducing again an expression kept whole.
func TestReduceStable(t *testing.T) {
	exprs := make([]string, 0, len(corpus)+len(synthetic))
	for _, rule := range corpus {
		exprs = append(exprs, rule.expr)
	}
	for _, tc := range synthetic {
		exprs = append(exprs, tc.expr)
	}
	for _, expr := range exprs {
		first, err := Reduce(expr)
		if err != nil {
			t.Fatalf("Reduce(%q): %v", expr, err)
		}
		if !first.Poll {
			continue
		}
		again, err := Reduce(first.Expr)
		if err != nil {
			t.Errorf("Reduce(%q) (reduced from %q): %v", first.Expr, expr, err)
			continue
		}
		if again.Expr != first.Expr || again.Reduced {
			t.Errorf("Reduce(%q) = {Expr: %q, Reduced: %t} (%s), want the same Expr, kept whole (reduced from %q)",
				first.Expr, again.Expr, again.Reduced, again.Derivation, expr)
		}
		if !first.Reduced && !reflect.DeepEqual(again, first) {
			t.Errorf("Reduce(%q) = %#v, want it as reduced from %q: %#v", first.Expr, again, expr, first)
		}
	}
}
