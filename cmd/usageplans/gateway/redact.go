package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// redacted replaces every key value and key digest in /config_dump.
const redacted = "[redacted]"

// redactConfig returns the configuration as indented JSON, member order kept, with every
// "value" and "valueSha256" member under the top-level "apiKeys" replaced by "[redacted]"
// (member names compared case-insensitively, so that no spelling slips through).
func redactConfig(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out bytes.Buffer
	if err := copyJSON(dec, &out, true, false); err != nil {
		return nil, fmt.Errorf("config_dump: %w", err)
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, out.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("config_dump: %w", err)
	}
	return ind.Bytes(), nil
}

// copyJSON copies one value from dec to out; top is true for the document's root object and
// inKeys below its apiKeys member.
func copyJSON(dec *json.Decoder, out *bytes.Buffer, top, inKeys bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for i := 0; dec.More(); i++ {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if i > 0 {
					out.WriteByte(',')
				}
				writeJSONString(out, k)
				out.WriteByte(':')
				if inKeys && (strings.EqualFold(k, "value") || strings.EqualFold(k, "valueSha256")) {
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						return err
					}
					writeJSONString(out, redacted)
					continue
				}
				if err := copyJSON(dec, out, false, inKeys || (top && k == "apiKeys")); err != nil {
					return err
				}
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := copyJSON(dec, out, false, inKeys); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		writeJSONString(out, t)
	case json.Number:
		out.WriteString(t.String())
	case bool:
		fmt.Fprint(out, t)
	case nil:
		out.WriteString("null")
	}
	return nil
}

func writeJSONString(out *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	out.Write(b)
}
