package keys

import (
	"fmt"
	"strings"
)

// csvError is a syntax error of a CSV file at a line.
type csvError struct {
	line int
	msg  string
}

func (e *csvError) Error() string { return fmt.Sprintf("%d: %s", e.line, e.msg) }

// csvRecord is one record of a CSV file and the line it starts on.
type csvRecord struct {
	line   int
	fields []string
}

// readCSV splits AWS's API key file format into records. It is RFC 4180 with what AWS's
// documentation adds: a field may be quoted with double or single quotes (a doubled quote
// inside stands for one), which is how several usage plan ids share a field. A quote opens
// a quoted field only as the field's first character (after spaces), so a name such as
// O'Brien needs none. Lines end in LF or CRLF; a leading UTF-8 BOM and blank lines are
// skipped; spaces around unquoted fields are trimmed.
func readCSV(data string) ([]csvRecord, error) {
	data = strings.TrimPrefix(data, bom)
	var out []csvRecord
	line := 1
	i := 0
	for i < len(data) {
		start := line
		var fields []string
		blank := true
		for {
			// One field.
			for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
				i++
			}
			var f strings.Builder
			if i < len(data) && (data[i] == '"' || data[i] == '\'') {
				q := data[i]
				i++
				closed := false
				for i < len(data) {
					c := data[i]
					if c == q {
						if i+1 < len(data) && data[i+1] == q {
							f.WriteByte(q)
							i += 2
							continue
						}
						i++
						closed = true
						break
					}
					if c == '\n' {
						line++
					}
					f.WriteByte(c)
					i++
				}
				if !closed {
					return nil, &csvError{start, fmt.Sprintf("a quoted field (opened with %c) is never closed", q)}
				}
				for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
					i++
				}
				if i < len(data) && data[i] != ',' && data[i] != '\n' && data[i] != '\r' {
					return nil, &csvError{line, "text after a closing quote (a quote inside a quoted field is written twice)"}
				}
				blank = false
			} else {
				j := i
				for j < len(data) && data[j] != ',' && data[j] != '\n' && data[j] != '\r' {
					j++
				}
				f.WriteString(strings.TrimRight(data[i:j], " \t"))
				if j > i {
					blank = false
				}
				i = j
			}
			fields = append(fields, f.String())
			if i < len(data) && data[i] == ',' {
				blank = false
				i++
				continue
			}
			break
		}
		// End of record.
		if i < len(data) && data[i] == '\r' {
			i++
			if i < len(data) && data[i] != '\n' {
				return nil, &csvError{line, "a carriage return that does not end the line"}
			}
		}
		if i < len(data) && data[i] == '\n' {
			i++
			line++
		}
		if !blank {
			out = append(out, csvRecord{start, fields})
		}
	}
	return out, nil
}
