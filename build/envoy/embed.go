package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// A manifest marks where plugin.json goes with two comment lines:
//
//	# BEGIN plugin.json as KEY string   (KEY: a YAML block scalar holding plugin.json verbatim)
//	# BEGIN plugin.json as KEY object   (KEY: plugin.json as an inline JSON object)
//	...
//	# END plugin.json
//
// The block is written at the BEGIN line's indentation. Envoy gets the verbatim text (a
// StringValue reaches the plugin unchanged); Istio's pluginConfig is a Struct, so it gets
// the object, re-indented but with the keys in plugin.json's order.
var (
	beginRE = regexp.MustCompile(`^( *)# BEGIN plugin\.json as ([A-Za-z_][A-Za-z0-9_]*) (string|object)\s*$`)
	endRE   = regexp.MustCompile(`^ *# END plugin\.json\s*$`)
)

// ErrNoBlock is Embed's error for a document without a marked block.
var ErrNoBlock = errors.New("no # BEGIN plugin.json as KEY string|object block")

// Embed returns doc with every marked block replaced by pluginJSON. It fails, naming the
// line, on a BEGIN without END, an END without BEGIN, or no block at all; and when
// pluginJSON is not one valid JSON object.
func Embed(doc, pluginJSON []byte) ([]byte, error) {
	var probe map[string]any
	if err := json.Unmarshal(pluginJSON, &probe); err != nil {
		return nil, fmt.Errorf("plugin.json: not a JSON object: %w", err)
	}
	if bytes.ContainsRune(pluginJSON, '\t') {
		// A tab can start a line of a YAML block scalar only after the indentation, and
		// YAML forbids tabs as indentation: keep the embedding unambiguous.
		return nil, fmt.Errorf("plugin.json: contains a tab; indent it with spaces")
	}
	lines := strings.SplitAfter(string(doc), "\n")
	var out strings.Builder
	blocks := 0
	for i := 0; i < len(lines); i++ {
		m := beginRE.FindStringSubmatch(strings.TrimRight(lines[i], "\n"))
		if m == nil {
			if endRE.MatchString(strings.TrimRight(lines[i], "\n")) {
				return nil, fmt.Errorf("line %d: # END plugin.json without a BEGIN", i+1)
			}
			out.WriteString(lines[i])
			continue
		}
		end := -1
		for j := i + 1; j < len(lines); j++ {
			if endRE.MatchString(strings.TrimRight(lines[j], "\n")) {
				end = j
				break
			}
			if beginRE.MatchString(strings.TrimRight(lines[j], "\n")) {
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("line %d: # BEGIN plugin.json without an # END plugin.json", i+1)
		}
		indent, key, form := m[1], m[2], m[3]
		out.WriteString(lines[i])
		body := bytes.TrimSpace(pluginJSON)
		if form == "object" {
			var buf bytes.Buffer
			if err := json.Indent(&buf, body, "", "  "); err != nil {
				return nil, fmt.Errorf("plugin.json: %w", err)
			}
			body = buf.Bytes()
			out.WriteString(indent + key + ":\n")
		} else {
			out.WriteString(indent + key + ": |\n")
		}
		for _, l := range strings.Split(string(body), "\n") {
			if l == "" {
				out.WriteString("\n")
				continue
			}
			out.WriteString(indent + "  " + l + "\n")
		}
		out.WriteString(lines[end])
		i = end
		blocks++
	}
	if blocks == 0 {
		return nil, ErrNoBlock
	}
	return []byte(out.String()), nil
}
