package alerts

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ValueRefAnnotation is the alert annotation that names, for a Grafana alert
// rule, the ref ID (query or expression) whose value fed the rule's
// condition, e.g. deephaven_value_ref: B. Grafana passes annotations through
// to the webhook (only __private__ ones are stripped), so a rule's author can
// set it in Grafana's rule editor. See chooseValue.
const ValueRefAnnotation = "deephaven_value_ref"

// Grafana's names for the alerts it makes of an evaluation that returned no
// data or failed (the rule's own name is then in the label rulename), and the
// annotation that carries the reason for a state, e.g. "NoData" or, with the
// rule's keep-last-state option, "NoData, KeepLast".
const (
	grafanaNoDataAlertName   = "DatasourceNoData"
	grafanaErrorAlertName    = "DatasourceError"
	grafanaStateReasonAnno   = "grafana_state_reason"
	grafanaNoDataPlaceholder = -1
)

// valueStringEntry matches one entry of Grafana's valueString, in each of
// the forms it has had:
//
//	[ metric='cpu' labels={host=a} value=1.5 ]           first (classic conditions only)
//	[ var='B' labels={host=a} value=15 ]                 then (queries and expressions)
//	[ var='B0' metric='cpu' labels={host=a} value=1.5 ]  then (classic conditions)
//	[ var='B' labels={host=a} type='reduce' value=15 ]   since grafana/grafana#112312 (2025)
//
// Entries are joined with ", ". Groups: 1 the ref ID (absent in the first
// form), 2 the metric, 3 the labels, 4 the value as Go's %v prints a float64
// (NaN, +Inf and -Inf included), or "null" for none. Label values are not
// quoted, so a label value holding "} value=" can mislead the match; the
// values field, when present, is used instead.
var valueStringEntry = regexp.MustCompile(`\[ (?:var='([^']*)' )?(?:metric='(.*?)' )?labels=\{(.*?)\}(?: type='[^']*')? value=([^ \]]+) \]`)

// valueToken is what %v prints for a float64.
var valueToken = regexp.MustCompile(`^(?:NaN|[+-]Inf|-?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?)$`)

// parseValueString returns the values of Grafana's valueString by ref ID:
// entries without a ref ID (the first form, still used by test
// notifications) are keyed by their position, "0", "1", ...; a repeated ref ID keeps the last value, as Grafana's own map
// did; "null" and unreadable values are left out. Text that is not an entry
// is skipped, so that a format change loses values rather than the request
// (Grafana resends a refused notification for as long as it fires). It
// stops after limit entries (no limit when limit <= 0) and reports whether
// there were more.
func parseValueString(s string, limit int) (values map[string]float64, over bool) {
	values = map[string]float64{}
	for i := 0; s != ""; i++ {
		m := valueStringEntry.FindStringSubmatchIndex(s)
		if m == nil {
			break
		}
		if limit > 0 && i == limit {
			return values, true
		}
		ref, tok := "", s[m[8]:m[9]]
		if m[2] >= 0 {
			ref = s[m[2]:m[3]]
		} else {
			ref = strconv.Itoa(i)
		}
		s = s[m[1]:]
		if tok == "null" || !valueToken.MatchString(tok) {
			continue
		}
		v, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			continue
		}
		values[ref] = v
	}
	return values, false
}

// candidates returns the values Value is chosen from: Values when it has
// any; else the values parsed from ValueString (which keeps NaN and ±Inf,
// and is all Grafana before 9.3 sent); else nil.
func (a *Alert) candidates() map[string]float64 {
	m, _ := a.boundedCandidates(0)
	return m
}

// boundedCandidates is candidates, parsing at most limit entries of
// ValueString (no limit when limit <= 0); over reports whether it had more.
func (a *Alert) boundedCandidates(limit int) (m map[string]float64, over bool) {
	if len(a.Values) > 0 {
		return a.Values, false
	}
	if a.ValueString == "" {
		return nil, false
	}
	m, over = parseValueString(a.ValueString, limit)
	if len(m) == 0 {
		return nil, over
	}
	return m, over
}

// chooseValue returns the ref ID of the value that fed a Grafana alert's
// condition, out of the alert's candidate values m; ok is false when there
// is none.
//
// Why a rule: Grafana reports the value of each query and expression of the
// alert rule by ref ID, but says neither which one is the condition nor
// which one fed it. So the rule takes the rule author's word when given, and
// otherwise guesses for the layout Grafana's rule editor creates by default,
// query → reduce → threshold: A queries the data source, B reduces each
// series to one number, and C, the condition, compares B with the threshold
// and is 1 (firing) or 0. Grafana's documented payload has the values
// {"B": 44.23943737541908, "C": 1}, and the value that fed the condition is
// B's, the nearest ref ID before C.
//
// The rule:
//
//  0. Candidates: the alert's values when that is a non-empty object; else
//     the entries of its valueString (NaN and ±Inf kept, null left out,
//     entries without a ref ID, Grafana 8.0's form, keyed "0", "1", ... in
//     order); else there is no value. In a NoData or Error alert (label
//     alertname DatasourceNoData or DatasourceError, or annotation
//     grafana_state_reason NoData or Error) a value of -1 is Grafana's
//     placeholder for "no value", and is left out.
//  1. Explicit: the annotation deephaven_value_ref (ValueRefAnnotation)
//     naming a candidate picks it.
//  2. Guess:
//     a. A single candidate is picked. It is the condition itself (a math
//     expression, a classic condition or a query), and its value is the
//     measured one unless it is a threshold (0 or 1).
//     b. Classic condition: when two or more candidates are X0, X1, ...
//     for one prefix X (X may be empty), X0 among them, and no other
//     candidate is 0 or 1, X0 is picked: Grafana keys the value of each
//     of a classic condition's conditions by ref ID and index. (This
//     comes before c–e, which would pick the last of them.)
//     c. The condition C is the candidate named "C" if there is one; else
//     the greatest candidate in natural order (shorter first, then byte
//     order: B < C < AA) when its value is 0 or 1; else there is none.
//     d. C is left out, and so is every NaN unless that leaves nothing.
//     e. One left is picked. Of several, the greatest that sorts before C
//     is picked, or the greatest when there is no C or none sorts
//     before it.
//
// The guess can be wrong when ref IDs are renamed (natural order then means
// little) or when several queries or reduces feed the condition; the
// annotation settles such rules. Every candidate stays in the Values column
// either way.
func chooseValue(m map[string]float64, labels, annotations map[string]string) (ref string, ok bool) {
	if isNoDataOrError(labels, annotations) {
		var kept map[string]float64
		for k, v := range m {
			if v == grafanaNoDataPlaceholder {
				continue
			}
			if kept == nil {
				kept = make(map[string]float64, len(m))
			}
			kept[k] = v
		}
		m = kept
	}
	if len(m) == 0 {
		return "", false
	}
	if r := annotations[ValueRefAnnotation]; r != "" {
		if _, ok := m[r]; ok {
			return r, true
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, naturalCompare)
	if len(keys) == 1 {
		return keys[0], true
	}
	if r, ok := classicConditionFirst(m, keys); ok {
		return r, true
	}

	cond := ""
	if _, ok := m["C"]; ok {
		cond = "C"
	} else if last := keys[len(keys)-1]; m[last] == 0 || m[last] == 1 {
		cond = last
	}
	left := make([]string, 0, len(keys))
	for _, k := range keys {
		if k != cond && !math.IsNaN(m[k]) {
			left = append(left, k)
		}
	}
	if len(left) == 0 {
		for _, k := range keys {
			if k != cond {
				left = append(left, k)
			}
		}
	}
	// keys holds two or more, so at least one is left besides cond.
	if cond != "" {
		for i := len(left) - 1; i >= 0; i-- {
			if naturalCompare(left[i], cond) < 0 {
				return left[i], true
			}
		}
	}
	return left[len(left)-1], true
}

// classicConditionFirst implements step 2b of chooseValue; keys are m's,
// sorted.
func classicConditionFirst(m map[string]float64, keys []string) (string, bool) {
	members := map[string]int{} // prefix → count of prefix+index keys
	for _, k := range keys {
		if p, ok := splitIndex(k); ok {
			members[p]++
		}
	}
	found, prefix := 0, ""
	for p, n := range members {
		if _, ok := m[p+"0"]; ok && n >= 2 {
			found++
			prefix = p
		}
	}
	if found != 1 {
		return "", false
	}
	for _, k := range keys {
		if p, ok := splitIndex(k); ok && p == prefix {
			continue
		}
		if v := m[k]; v == 0 || v == 1 {
			return "", false
		}
	}
	return prefix + "0", true
}

// splitIndex splits a key into a prefix and a trailing decimal index written
// as Go writes an int (no leading zero), e.g. "B12" into "B"; ok is false when
// there is no such index.
func splitIndex(k string) (prefix string, ok bool) {
	i := len(k)
	for i > 0 && k[i-1] >= '0' && k[i-1] <= '9' {
		i--
	}
	idx := k[i:]
	if idx == "" || (len(idx) > 1 && idx[0] == '0') {
		return "", false
	}
	return k[:i], true
}

// naturalCompare orders ref IDs as Grafana names them, A…Z, AA…: shorter
// first, then by bytes.
func naturalCompare(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// isNoDataOrError reports whether Grafana made the alert of an evaluation
// that returned no data or failed. Such alerts carry -1 for every value
// (Grafana 11.2 on).
func isNoDataOrError(labels, annotations map[string]string) bool {
	switch labels["alertname"] {
	case grafanaNoDataAlertName, grafanaErrorAlertName:
		return true
	}
	// The reason may be several, joined with ", " ("NoData, KeepLast").
	for r := range strings.SplitSeq(annotations[grafanaStateReasonAnno], ",") {
		switch strings.TrimSpace(r) {
		case "NoData", "Error":
			return true
		}
	}
	return false
}
