package config

import "strconv"

// syntaxError finds where data stops being JSON (RFC 8259), for the error of a configuration
// gjson rejects: gjson says whether, not where. It reports what encoding/json's decoder
// reports for the same input, the message and the offset just past the offending byte
// (TestSyntaxErrorMatchesEncodingJSON, FuzzSyntaxError), without linking encoding/json and
// reflect into the module. ok is false when data is valid JSON.
//
// A token cut off by the end of the input is reported at the input's end as if a space
// followed ("invalid character ' ' in numeric literal" for "-"), as encoding/json does;
// input that ends where more is expected is "unexpected end of JSON input".
func syntaxError(data []byte) (offset int, msg string, ok bool) {
	n := len(data)
	i := 0
	// at is the byte at j, or the space encoding/json feeds its scanner at the end.
	at := func(j int) byte {
		if j < n {
			return data[j]
		}
		return ' '
	}
	bad := func(j int, context string) (int, string, bool) {
		return min(j+1, n), "invalid character " + quoteChar(at(j)) + " " + context, true
	}
	skip := func() {
		for i < n && isSpace(data[i]) {
			i++
		}
	}
	var open []byte // the '{' and '[' not yet closed
	// str scans the string starting at data[i] == '"', leaving i past its closing quote.
	str := func() (int, string, bool) {
		for i++; ; i++ {
			if i >= n {
				return n, "unexpected end of JSON input", true
			}
			switch c := data[i]; {
			case c == '"':
				i++
				return 0, "", false
			case c == '\\':
				i++
				switch at(i) {
				case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
				case 'u':
					for k := 0; k < 4; k++ {
						if i++; !isHex(at(i)) {
							return bad(i, `in \u hexadecimal character escape`)
						}
					}
				default:
					return bad(i, "in string escape code")
				}
			case c < 0x20:
				return bad(i, "in string literal")
			}
		}
	}
	// digits skips a run of decimal digits.
	digits := func() {
		for i < n && isDigit(data[i]) {
			i++
		}
	}

value: // a value must start at i
	skip()
	if i >= n {
		return n, "unexpected end of JSON input", true
	}
	switch c := data[i]; {
	case c == '{' || c == '[':
		if len(open) >= maxNestingDepth {
			return bad(i, "exceeded max depth")
		}
		open = append(open, c)
		i++
		skip()
		if c == '[' {
			if at(i) == ']' && i < n {
				i++
				open = open[:len(open)-1]
				goto end
			}
			goto value
		}
		if at(i) == '}' && i < n {
			i++
			open = open[:len(open)-1]
			goto end
		}
		goto key
	case c == '"':
		if o, m, failed := str(); failed {
			return o, m, failed
		}
	case c == '-' || isDigit(c):
		if c == '-' {
			i++
			if !isDigit(at(i)) {
				return bad(i, "in numeric literal")
			}
		}
		if data[i] == '0' {
			i++
		} else {
			digits()
		}
		if at(i) == '.' && i < n {
			if i++; !isDigit(at(i)) {
				return bad(i, "after decimal point in numeric literal")
			}
			digits()
		}
		if e := at(i); (e == 'e' || e == 'E') && i < n {
			if i++; at(i) == '+' || at(i) == '-' {
				i++
			}
			if !isDigit(at(i)) {
				return bad(i, "in exponent of numeric literal")
			}
			digits()
		}
	case c == 't' || c == 'f' || c == 'n':
		word := "null"
		if c == 't' {
			word = "true"
		} else if c == 'f' {
			word = "false"
		}
		for k := 1; k < len(word); k++ {
			if i++; at(i) != word[k] {
				return bad(i, "in literal "+word+" (expecting "+quoteChar(word[k])+")")
			}
		}
		i++
	default:
		return bad(i, "looking for beginning of value")
	}

end: // a value ended at i
	skip()
	if len(open) == 0 {
		if i < n {
			return bad(i, "after top-level value")
		}
		return 0, "", false
	}
	if i >= n {
		return n, "unexpected end of JSON input", true
	}
	if open[len(open)-1] == '{' {
		switch data[i] {
		case ',':
			i++
			goto key
		case '}':
			i++
			open = open[:len(open)-1]
			goto end
		}
		return bad(i, "after object key:value pair")
	}
	switch data[i] {
	case ',':
		i++
		goto value
	case ']':
		i++
		open = open[:len(open)-1]
		goto end
	}
	return bad(i, "after array element")

key: // an object member's name must start at i
	skip()
	if i >= n {
		return n, "unexpected end of JSON input", true
	}
	if data[i] != '"' {
		return bad(i, "looking for beginning of object key string")
	}
	if o, m, failed := str(); failed {
		return o, m, failed
	}
	skip()
	if i >= n {
		return n, "unexpected end of JSON input", true
	}
	if data[i] != ':' {
		return bad(i, "after object key")
	}
	i++
	goto value
}

// maxNestingDepth is how deep encoding/json lets arrays and objects nest.
const maxNestingDepth = 10000

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f' }

// quoteChar shows a byte between single quotes, escaped as in a Go string.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}
