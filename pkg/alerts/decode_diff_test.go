package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// diffOld decodes body with Decode and with decodeOld, the encoding/json
// decoder Decode replaced, and describes how the results differ ("" when
// they do not): the same error text, error types and cause types, or
// equal messages.
//
// decodeOld picks among several problems in one label set or values object
// by Go's random map order, where Decode reports the first in the body; so
// a different error text is retried until decodeOld has had a fair chance
// to produce Decode's.
func diffOld(body []byte, opts Options) string {
	m, err := Decode(body, opts)
	mOld, errOld := decodeOld(body, opts)
	if (err == nil) != (errOld == nil) {
		return fmt.Sprintf("Decode error %v, decodeOld error %v", err, errOld)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return fmt.Sprintf("Decode error %v is %T", err, err)
		}
		for i := 0; err.Error() != errOld.Error() && i < 100; i++ {
			_, errOld = decodeOld(body, opts)
		}
		if err.Error() != errOld.Error() {
			return fmt.Sprintf("Decode error:\n %s\ndecodeOld error:\n %s", err, errOld)
		}
		if got, want := fmt.Sprintf("%T", errors.Unwrap(err)), fmt.Sprintf("%T", errors.Unwrap(errOld)); got != want {
			return fmt.Sprintf("error %q wraps a %s, decodeOld's a %s", err, got, want)
		}
		return ""
	}
	if len(m.Alerts) != len(mOld.Alerts) {
		return fmt.Sprintf("%d alerts, decodeOld %d", len(m.Alerts), len(mOld.Alerts))
	}
	// Value may be NaN, which DeepEqual finds unequal to itself.
	got, want := *m, *mOld
	got.Alerts, want.Alerts = append([]Alert(nil), m.Alerts...), append([]Alert(nil), mOld.Alerts...)
	if (m.Alerts == nil) != (mOld.Alerts == nil) {
		return fmt.Sprintf("Alerts %#v, decodeOld %#v", m.Alerts, mOld.Alerts)
	}
	for i := range got.Alerts {
		if !sameValue(got.Alerts[i].Value, want.Alerts[i].Value) {
			return fmt.Sprintf("alerts[%d].Value %s, decodeOld %s", i, fmtValue(got.Alerts[i].Value), fmtValue(want.Alerts[i].Value))
		}
		got.Alerts[i].Value, want.Alerts[i].Value = nil, nil
		if !reflect.DeepEqual(got.Alerts[i], want.Alerts[i]) {
			return fmt.Sprintf("alerts[%d]:\n %#v\ndecodeOld:\n %#v", i, got.Alerts[i], want.Alerts[i])
		}
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("message:\n %#v\ndecodeOld:\n %#v", got, want)
	}
	return ""
}

// diffSeeds are the bodies the differential tests start from: testdata,
// generated notifications, and bodies made to probe what encoding/json
// does that a decoder of its own could easily get wrong.
func diffSeeds(t testing.TB) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	seeds = append(seeds, benchBody(1), benchBody(3),
		grafanaBody(manyValues(5), `""`),
		grafanaBody("null", manyValueStringEntries(5)),
		grafanaBody(`{"B0":0.5,"B1":2}`, `""`),
		grafanaBody(`{"B":-1,"C":-1}`, `""`),
		grafanaBody(`{"B":1e999}`, `""`),
		grafanaBody(`{"B":"NaN","C":null,"":1}`, `""`),
		grafanaBody(`{"B":1,"B":"x"}`, `""`),
		grafanaBody(`{"B":"x","B":1}`, `5`),
		grafanaBody(`{}`, `"[ var='A' labels={} value=NaN ]"`),
		grafanaBody(`{"A":-0,"B":1E+2,"C":0.5e-3}`, `null`),
	)
	const alert = `{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-11-25T04:00:00Z"}`
	for _, s := range []string{
		// The body as a whole.
		``, ` `, "\v{}", `{}`, `[]`, `"x"`, `1`, `-0.5e3`, `null`, `true`, `{} `, `{}x`, `{}}`, `{"alerts":[]}` + "\x00",
		"\ufeff{\"alerts\":[]}", `{"alerts":[]`, `{"alerts":[],}`, `{"alerts":[,]}`, `{"alerts":[1,]}`, `{,"alerts":[]}`,
		`{"alerts" []}`, `{"alerts":[]"x":1}`, `{'alerts':[]}`, `{alerts:[]}`, `{"alerts":[01]}`, `{"alerts":[1.]}`,
		`{"alerts":[.5]}`, `{"alerts":[1e]}`, `{"alerts":[-]}`, `{"alerts":[+1]}`, `{"alerts":[NaN]}`, `{"alerts":[tru]}`,
		`{"alerts":[nulll]}`, `{"alerts":["\x"]}`, `{"alerts":["\'"]}`, `{"alerts":["\U0041"]}`, `{"alerts":["\a"]}`, `{"alerts":["\u12"]}`, `{"alerts":["\u12G4"]}`, "{\"alerts\":[\"\t\"]}",
		"{\"alerts\":[\"\x7f\"]}", "{\"alerts\":[\"\xff\"]}", "{\"alerts\":[\"\xed\xa0\x80\"]}", "{\"alerts\":[]}\xc3",
		`{"x":` + strings.Repeat("[", 99) + strings.Repeat("]", 99) + `,"alerts":[]}`,
		`{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"alerts":[]}`,
		`{"x":` + strings.Repeat("[", 100) + `,"alerts":[]}`,
		`{"x":"` + strings.Repeat("[", 200) + `","alerts":[]}`,
		strings.Repeat(`{"a":`, 101) + "1" + strings.Repeat("}", 101),
		`]]]` + strings.Repeat("[", 102),
		// Members: repeated, matched case-insensitively, escaped, null.
		`{"alerts":[` + alert + `],"alerts":null}`,
		`{"alerts":null,"alerts":[` + alert + `]}`,
		`{"ALERTS":[` + alert + `],"Version":"4","RECEIVER":"r","grOUPkey":"k"}`,
		`{"alert\u0073":[` + alert + `],"\u0076ersion":"\u0034"}`,
		"{\"alerts\":[" + alert + "],\"group\u212aey\":\"kelvin\",\"\u017ftatus\":\"long s\",\"ßtatus\":1}",
		`{"alerts":[{"\u017ftatus":"firing","LABELS":{"a":"b"},"StartsAt":"2026-11-25T04:00:00Z","ENDSAT":null}]}`,
		`{"alerts":[{"status":"pending","status":"firing","startsAt":"x","startsAt":"2026-11-25T04:00:00Z"}]}`,
		`{"alerts":[{"status":"firing","status":null,"startsAt":"2026-11-25T04:00:00Z"}]}`,
		`{"alerts":[{"status":"resolved","startsAt":"2026-11-25T04:00:00Z","endsAt":"2026-11-25T05:00:00+01:00"}]}`,
		`{"alerts":[{"status":"resolved","startsAt":"2026-11-25T04:00:00Z","endsAt":"2026-11-25T05:00:00\u002B02:00"}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","endsAt":"garbage"}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00.123456789123Z"}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25 04:00:00Z"}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00z"}]}`,
		`{"alerts":[{"status":"firing","startsAt":"1970-01-01T00:00:00Z","fingerprint":""}]}`,
		`{"alerts":[{"status":"firing","startsAt":"1969-12-31T23:59:59.999999999Z"}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":null,"annotations":null}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"a":1,"a":"x"}}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"a":"x","a":1}}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"a":"x","":"y"}}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"a":"1","b":"2","c":"3","d":"4","a":"5"}}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"a":"1","b":"2","c":"3","d":"4","e":5}}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"\ud800":"\ud800\u0041\udc00\ud800\ud83d\ude00\u00e9\u0000","\/":"\b\f\n\r\t\"\\"}}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"a":"\ud83d"},"fingerprint":null}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","labels":{"a":"\uD83D\uDE00 \uDBFF\uDFFF \uDC00"}}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","generatorURL":1,"fingerprint":[]}]}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","values":"x","silenceURL":1}],"version":"4"}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","values":"x","silenceURL":1}],"version":"1"}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z","imageURL":1}, 1],"version":"1"}`,
		`{"alerts":[{"status":"firing","startsAt":"2026-11-25T04:00:00Z"}, {"status":1}],"version":"1","orgId":"x"}`,
		`{"alerts":[1,"x",null,[],true],"version":"1"}`,
		`{"alerts":[` + alert + `,` + alert + `,` + alert + `,{"status":1}]}`,
		`{"alerts":[` + alert + `],"version":""}`, `{"alerts":[` + alert + `],"version":null}`,
		`{"alerts":[` + alert + `],"version":4}`, `{"alerts":[` + alert + `],"version":"1 "}`,
		`{"alerts":{},"receiver":1}`, `{"alerts":"x","status":[]}`, `{"alerts":true,"externalURL":{}}`,
		`{"alerts":[],"truncatedAlerts":-0}`, `{"alerts":[],"truncatedAlerts":0.0}`, `{"alerts":[],"truncatedAlerts":1e2}`,
		`{"alerts":[],"truncatedAlerts":18446744073709551615}`, `{"alerts":[],"truncatedAlerts":18446744073709551616}`,
		`{"alerts":[],"truncatedAlerts":"1"}`, `{"alerts":[],"truncatedAlerts":null}`,
		`{"alerts":[],"version":"1","orgId":-9223372036854775808}`, `{"alerts":[],"version":"1","orgId":9223372036854775808}`,
		`{"alerts":[],"version":"1","orgId":1.0,"title":1}`, `{"alerts":[],"version":"4","orgId":1.0,"title":1}`,
		`{"alerts":[],"version":"1","title":"\u00e9","state":null,"message":"m","message":2}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// diffOpts are the options the differential tests decode with: the
// defaults, and limits low enough for the seeds to reach.
var diffOpts = []Options{{}, {MaxAlertsPerRequest: 2, MaxLabelsPerAlert: 3}}

// TestDecodeMatchesOld checks that Decode decodes like decodeOld, the
// encoding/json decoder it replaced, the seeds and many mutations of them,
// valid and not: same messages, same error texts.
func TestDecodeMatchesOld(t *testing.T) {
	seeds := diffSeeds(t)
	for i, body := range seeds {
		for _, opts := range diffOpts {
			if d := diffOld(body, opts); d != "" {
				t.Errorf("seed %d %q, %+v:\n%s", i, truncate(body), opts, d)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	mutations := 10000
	if testing.Short() {
		mutations = 1000
	}
	for range mutations {
		body := mutate(rng, pick(rng, seeds))
		for _, opts := range diffOpts {
			if d := diffOld(body, opts); d != "" {
				t.Fatalf("mutation %q, %+v:\n%s", body, opts, d)
			}
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// pick returns a random seed to mutate, of the small ones: the big ones
// would only slow the tests down.
func pick(rng *rand.Rand, seeds [][]byte) []byte {
	for {
		if b := seeds[rng.IntN(len(seeds))]; len(b) <= 8<<10 {
			return b
		}
	}
}

// jsonScalar finds the strings, numbers and literals of a JSON text, for
// mutate.
var jsonScalar = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null`)

// mutate returns a copy of body changed in one to three random places, in
// the ways likely to matter to a JSON decoder: mostly still JSON, with
// values of other types or contents, repeated members, and some broken.
func mutate(rng *rand.Rand, body []byte) []byte {
	tokens := []string{"{", "}", "[", "]", ",", ":", `"`, " ", "\\", "null", "true", "0", "-1", "1.5", "1e999", `""`,
		`"x"`, `{}`, `[]`, `{"a":1}`, `\u00`, `\ud800`, `\u0022`, `\'`, `\x`, "\xff", "\x00", "\t", `"status"`, `"labels"`,
		`"values"`, `"version":"1",`, `"version":"4",`, `"STATUS":`, `"alerts":`, `"firing"`, `"resolved"`, `"1"`}
	values := []string{`null`, `1`, `-1`, `0`, `1.5`, `1e999`, `true`, `""`, `"x"`, `"1"`, `"4"`, `"firing"`, `"resolved"`,
		`"2026-11-25T04:00:00Z"`, `"1969-01-01T00:00:00Z"`, `"0001-01-01T00:00:00Z"`, `{}`, `[]`, `[1]`, `{"a":"b"}`,
		`{"a":"b","a":1}`, `{"":"x"}`, `{"B":1,"C":0}`, `{"B":"1"}`, `"\u0041\ud800"`, `"[ var='B' labels={} value=NaN ]"`}
	b := append([]byte(nil), body...)
	for range 1 + rng.IntN(3) {
		at := 0
		if len(b) > 0 {
			at = rng.IntN(len(b) + 1)
		}
		switch op := rng.IntN(10); op {
		case 0: // delete a few bytes
			n := min(1+rng.IntN(8), len(b)-at)
			b = append(b[:at], b[at+n:]...)
		case 1: // insert a token
			tok := tokens[rng.IntN(len(tokens))]
			b = append(b[:at], append([]byte(tok), b[at:]...)...)
		case 2: // repeat a stretch elsewhere
			if len(b) == 0 {
				continue
			}
			from := rng.IntN(len(b))
			n := min(1+rng.IntN(64), len(b)-from)
			piece := append([]byte(nil), b[from:from+n]...)
			b = append(b[:at], append(piece, b[at:]...)...)
		case 3: // replace a byte, mostly by ASCII
			if at < len(b) {
				if rng.IntN(8) == 0 {
					b[at] = byte(rng.IntN(256))
				} else {
					b[at] = byte(0x20 + rng.IntN(0x5f))
				}
			}
		case 4: // swap values known to matter
			for _, r := range [][2]string{{`"firing"`, `"resolved"`}, {`"4"`, `"1"`}, {`"1"`, `"4"`}, {`null`, `{}`},
				{`"status"`, `"Status"`}, {`0`, `-1`}, {`Z"`, `"`}, {`"B"`, `""`}} {
				if rng.IntN(3) == 0 {
					b = []byte(strings.Replace(string(b), r[0], r[1], 1))
				}
			}
		case 5, 6, 7: // replace a scalar (a value, or a member name) by a value
			locs := jsonScalar.FindAllIndex(b, -1)
			if len(locs) == 0 {
				continue
			}
			l := locs[rng.IntN(len(locs))]
			v := values[rng.IntN(len(values))]
			b = append(b[:l[0]], append([]byte(v), b[l[1]:]...)...)
		default: // repeat a member: a scalar, its colon and value, after itself
			locs := jsonScalar.FindAllIndex(b, -1)
			if len(locs) < 2 {
				continue
			}
			j := rng.IntN(len(locs) - 1)
			from, to := locs[j][0], locs[j+1][1]
			if !bytes.Contains(b[from:to], []byte(":")) || bytes.ContainsAny(b[from:to], "{}[]") {
				continue
			}
			piece := append([]byte(","), b[from:to]...)
			b = append(b[:to], append(piece, b[to:]...)...)
		}
	}
	return b
}

// scanValid reports whether the scanner accepts b.
func scanValid(b []byte) bool {
	s := scanner{data: b}
	s.skip()
	s.end()
	return !s.failed
}

// TestScannerMatchesEncodingJSON checks that the scanner accepts what
// encoding/json accepts, within Decode's other limits (UTF-8 and nesting).
func TestScannerMatchesEncodingJSON(t *testing.T) {
	check := func(b []byte) {
		t.Helper()
		want := json.Valid(b) && utf8.Valid(b) && checkDepth(b, maxDepth) == nil
		if got := scanValid(b); got != want {
			t.Fatalf("scanner accepts %q: %v, want %v", truncate(b), got, want)
		}
	}
	seeds := diffSeeds(t)
	for _, b := range seeds {
		check(b)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		check(mutate(rng, pick(rng, seeds)))
	}
}

// TestUnquoteMatchesEncodingJSON checks that strings are unescaped as
// encoding/json unescapes them, lone and mismatched surrogates included.
func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	pieces := []string{`a`, `é`, `☃`, `😀`, `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0000`, `\u0041`, `\u00e9`,
		`\uFFFD`, `\ud800`, `\udbff`, `\udc00`, `\udfff`, `\ud83d`, `\ude00`, `\uD83D\uDE00`, `\u`, `0`, `D`, `\\u`, `\'`, `\U`, `\x41`}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		var sb strings.Builder
		sb.WriteByte('"')
		for range rng.IntN(6) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		sb.WriteByte('"')
		in := []byte(sb.String())
		var want string
		wantErr := json.Unmarshal(in, &want)
		s := scanner{data: in}
		raw, _ := s.str()
		s.end()
		if s.failed != (wantErr != nil) {
			t.Fatalf("%s: scanner failed %v, encoding/json error %v", in, s.failed, wantErr)
		}
		if wantErr == nil {
			if got := string(unquote(nil, raw)); got != want {
				t.Fatalf("unquote(%s) = %q, want %q", in, got, want)
			}
		}
	}
}

// TestMatchFieldMatchesEncodingJSON checks that member names select the
// fields encoding/json would have selected in a struct.
func TestMatchFieldMatchesEncodingJSON(t *testing.T) {
	variants := func(name string) []string {
		out := []string{name, strings.ToUpper(name), strings.ToLower(name), name + "x", name[1:], "x" + name,
			strings.ReplaceAll(name, "s", "\u017f"), strings.ReplaceAll(name, "k", "\u212a"), strings.ReplaceAll(name, "K", "\u212a"),
			strings.ReplaceAll(name, "i", "\u0131"), strings.ReplaceAll(name, "I", "\u0130"), strings.ReplaceAll(name, "e", "é")}
		return out
	}
	for _, tc := range []struct {
		names []string
		match func([]byte) int
	}{
		{messageFields, messageField},
		{alertFields, alertField},
	} {
		for _, field := range tc.names {
			for _, name := range variants(field) {
				// Which field does encoding/json fill from a member of that name?
				want := -1
				for j, f := range tc.names {
					typ := reflect.StructOf([]reflect.StructField{{Name: "F", Type: reflect.TypeFor[*int](), Tag: reflect.StructTag(`json:"` + f + `"`)}})
					v := reflect.New(typ)
					body, _ := json.Marshal(map[string]int{name: 1})
					if err := json.Unmarshal(body, v.Interface()); err != nil {
						t.Fatal(err)
					}
					if !v.Elem().Field(0).IsNil() {
						want = j
						break
					}
				}
				if got := tc.match([]byte(name)); got != want {
					t.Errorf("member %q selects field %d, want %d", name, got, want)
				}
			}
		}
	}
}
