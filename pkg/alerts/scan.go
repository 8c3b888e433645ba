package alerts

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads one JSON text from a byte slice in a single forward pass.
// It accepts exactly the texts encoding/json accepts (RFC 8259: no comments,
// no NaN, no trailing commas, any \u escape including lone surrogates), and
// on top of that requires the body to be valid UTF-8 and to nest arrays and
// objects at most maxDepth deep, the checks Decode made before it had a
// scanner of its own.
//
// It does not build error messages: the first problem sets failed and moves
// to the end of the input, so that every read after it fails too and every
// loop over members or elements ends. Decode then explains the failure with
// bodyError, which reports it exactly as the encoding/json based decoder
// did; that costs a second look at the body, but only at bodies that are
// refused.
type scanner struct {
	data    []byte
	pos     int  // next byte to read
	depth   int  // arrays and objects open at pos
	failed  bool // data is not a JSON text Decode accepts
	failPos int  // where the scanner found that out

	// name holds the unescaped name of the last member read, when it had
	// escapes (see member).
	name []byte
}

// fail records that the input is malformed and skips to its end.
func (s *scanner) fail() {
	if !s.failed {
		s.failed, s.failPos = true, s.pos
	}
	s.pos = len(s.data)
}

// peek skips whitespace and returns the next byte, or 0 at the end of the
// input (0 starts no JSON token, so the caller fails on it).
func (s *scanner) peek() byte {
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() {
	if s.peek() != 0 || s.pos != len(s.data) {
		s.fail()
	}
}

// open consumes the '{' or '[' at pos, which the caller has peeked.
func (s *scanner) open() {
	s.pos++
	s.depth++
	if s.depth > maxDepth {
		s.fail()
	}
}

// member reads the name of the next member of the object being read, and
// the colon after it; n is the number of members read before. It returns
// false at the end of the object, with its '}' consumed, and on failure.
// The name is unescaped; it aliases the input or s.name, and is valid until
// the next call.
func (s *scanner) member(n int) (name []byte, ok bool) {
	c := s.peek()
	if n > 0 {
		switch c {
		case ',':
			s.pos++
			c = s.peek()
		case '}':
			s.pos++
			s.depth--
			return nil, false
		default:
			s.fail()
			return nil, false
		}
	} else if c == '}' {
		s.pos++
		s.depth--
		return nil, false
	}
	if c != '"' {
		s.fail()
		return nil, false
	}
	raw, esc := s.str()
	if s.peek() != ':' {
		s.fail()
		return nil, false
	}
	s.pos++
	if esc {
		s.name = unquote(s.name[:0], raw)
		return s.name, true
	}
	return raw, true
}

// element reports whether the array being read has another element, and
// consumes the comma before it; n is the number of elements read before.
// At the end of the array it consumes the ']' and returns false. The caller
// reads the element.
func (s *scanner) element(n int) bool {
	c := s.peek()
	if c == ']' && n == 0 {
		s.pos++
		s.depth--
		return false
	}
	if n == 0 {
		return true // a value must follow; its reader fails if it does not
	}
	switch c {
	case ',':
		s.pos++
		return true
	case ']':
		s.pos++
		s.depth--
		return false
	}
	s.fail()
	return false
}

// plain marks the bytes that stand for themselves in a JSON string: ASCII
// but for control characters, '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads the string at pos (the caller has peeked its '"') and returns
// what is between the quotes, still escaped, and whether it holds escapes.
func (s *scanner) str() (raw []byte, esc bool) {
	data := s.data
	start := s.pos + 1
	i := start
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			s.fail()
			return nil, false
		}
		switch c := data[i]; {
		case c == '"':
			s.pos = i + 1
			return data[start:i], esc
		case c == '\\':
			esc = true
			if i+1 >= len(data) {
				s.fail()
				return nil, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || hex4(data[i+2:i+6]) < 0 {
					s.fail()
					return nil, false
				}
				i += 6
			default:
				s.fail()
				return nil, false
			}
		case c < 0x20:
			s.fail()
			return nil, false
		default: // the first byte of a multi-byte UTF-8 sequence, or not UTF-8
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				s.pos = i
				s.fail()
				return nil, false
			}
			i += size
		}
	}
}

// strValue reads the string at pos and returns its unescaped content, which
// aliases the input or buf (grown as needed, returned as newBuf).
func (s *scanner) strValue(buf []byte) (v, newBuf []byte) {
	raw, esc := s.str()
	if !esc {
		return raw, buf
	}
	buf = unquote(buf[:0], raw)
	return buf, buf
}

// num reads the number at pos (the caller has peeked '-' or a digit) and
// returns its text: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) num() []byte {
	data := s.data
	start, i := s.pos, s.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digits(data, i+1)
	default:
		s.fail()
		return nil
	}
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			s.fail()
			return nil
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			s.fail()
			return nil
		}
		i = j
	}
	s.pos = i
	return data[start:i]
}

// digits returns the index of the first byte at or after i that is not a
// decimal digit.
func digits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// literal reads the true, false or null at pos (the caller has peeked its
// first letter).
func (s *scanner) literal() {
	var want string
	switch s.data[s.pos] {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	default:
		want = "null"
	}
	if len(s.data)-s.pos < len(want) || string(s.data[s.pos:s.pos+len(want)]) != want {
		s.fail()
		return
	}
	s.pos += len(want)
}

// skip reads and checks a value of any type without keeping it. Recursion
// is bounded by maxDepth: open fails beyond it.
func (s *scanner) skip() {
	switch c := s.peek(); c {
	case '{':
		s.open()
		for n := 0; ; n++ {
			if _, ok := s.member(n); !ok {
				return
			}
			s.skip()
		}
	case '[':
		s.open()
		for n := 0; s.element(n); n++ {
			s.skip()
		}
	case '"':
		s.str()
	case 't', 'f', 'n':
		s.literal()
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			s.num()
			return
		}
		s.fail()
	}
}

// kindOf names the JSON type of a value by its first byte, which the
// scanner accepts.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}

// hex4 returns the value of four hexadecimal digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquote appends the unescaped form of raw, the inside of a string the
// scanner accepted, to dst. It decodes as encoding/json does: a \u escape
// of a lone or mismatched surrogate becomes U+FFFD, and a valid pair one
// rune.
func unquote(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		c := raw[i+1]
		i += 2
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
					dst = utf8.AppendRune(dst, dec)
					i += 6
					break
				}
				r = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst
}

// matchField returns the index in names of the field a member name selects,
// or -1, the way encoding/json matches an object's members to a struct's
// fields: exactly, or else case-insensitively with Unicode simple folding
// (so "Status", "STATUS" and "ſtatus" select status too). names are ASCII.
// Callers try the exact names first, in a switch; this is the fallback for
// names that are not one of them, mostly fields Decode ignores.
func matchField(name []byte, names []string) int {
	// Every rune that folds to an ASCII letter is at most 3 bytes long (K,
	// the Kelvin sign), so longer names cannot fold to one of names.
	const maxLen = 3 * 16
	if len(name) > maxLen {
		return -1
	}
	var buf [maxLen]byte
	folded := foldName(buf[:0], name)
	for i, n := range names {
		if len(n) != len(folded) {
			continue
		}
		j := 0
		for j < len(n) && foldASCII(n[j]) == folded[j] {
			j++
		}
		if j == len(n) {
			return i
		}
	}
	return -1
}

// foldName appends the folded form of name to dst, exactly as encoding/json
// folds member and field names: ASCII letters to upper case, other runes to
// the smallest rune of their Unicode simple fold orbit.
func foldName(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			dst = append(dst, foldASCII(c))
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

func foldASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		c -= 'a' - 'A'
	}
	return c
}

// foldRune returns the smallest rune of r's simple fold orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
