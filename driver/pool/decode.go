package pool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// parseNative decodes and validates the native form; a validation error
// about one pool (or one of its disks) names the line and column of its
// entry.
func parseNative(data []byte) (*Config, error) {
	c, isJSON, err := decodeNative(data)
	if err != nil {
		return nil, err
	}
	err = c.Validate()
	if err == nil {
		return c, nil
	}
	m := entryRE.FindStringSubmatch(err.Error())
	if m == nil {
		return nil, err
	}
	path := []any{"pools", atoi(m[1])}
	if m[2] != "" {
		path = append(path, "disks", atoi(m[2]))
	}
	line, col, ok := locateYAML(data, path)
	if isJSON {
		line, col, ok = locateJSON(data, path)
	}
	if !ok {
		return nil, err
	}
	msg := strings.TrimPrefix(err.Error(), ErrInvalidConfig.Error()+": ")
	return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, &posErr{line, col, msg})
}

// entryRE finds the pool (and disk) a validation error is about.
var entryRE = regexp.MustCompile(`^[^:]*: pools\[(\d+)\] \("(?:[^"\\]|\\.)*"\): (?:disks\[(\d+)\])?`)

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// locateYAML is the position of the node at path (keys and indices).
func locateYAML(data []byte, path []any) (line, col int, ok bool) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0, 0, false
	}
	n := doc.Content[0]
	for _, step := range path {
		var next *yaml.Node
		switch step := step.(type) {
		case string:
			for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == step {
					next = n.Content[i+1]
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && step < len(n.Content) {
				next = n.Content[step]
			}
		}
		if next == nil {
			return 0, 0, false
		}
		n = next
	}
	return n.Line, n.Column, true
}

// locateJSON is the position of the value at path (keys and indices).
func locateJSON(data []byte, path []any) (line, col int, ok bool) {
	w := &jsonWalk{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	for _, step := range path {
		tok, err := w.dec.Token()
		if err != nil {
			return 0, 0, false
		}
		found := false
		for i := 0; !found && w.dec.More(); i++ {
			switch step := step.(type) {
			case string:
				key, err := w.dec.Token()
				found = err == nil && tok == json.Delim('{') && key == step
			case int:
				found = tok == json.Delim('[') && i == step
			}
			if !found {
				var skip json.RawMessage
				if w.dec.Decode(&skip) != nil {
					return 0, 0, false
				}
			}
		}
		if !found {
			return 0, 0, false
		}
	}
	line, col = lineCol(data, w.next())
	return line, col, true
}

// decodeNative decodes the native form strictly: unknown fields, duplicate
// keys and values of the wrong type are errors that name their line and
// column. A file that is a JSON object is decoded as JSON, anything else
// (YAML flow style included) as YAML.
func decodeNative(data []byte) (c *Config, isJSON bool, err error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		var syntax *json.SyntaxError
		err := json.Unmarshal(data, new(any))
		if err == nil {
			c, err := decodeJSON(data)
			return c, true, err
		}
		// Not JSON: perhaps a YAML flow mapping; if YAML cannot read it
		// either, the JSON error is the one to show.
		if c, yerr := decodeYAML(data); yerr == nil {
			return c, false, nil
		}
		if errors.As(err, &syntax) {
			return nil, true, posError(data, syntax.Offset-1, strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil, true, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	c, err = decodeYAML(data)
	return c, false, err
}

// decodeYAML decodes YAML with go.yaml.in/yaml/v3, refusing unknown fields.
func decodeYAML(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err != io.EOF {
		return nil, yamlError(data, err)
	}
	return &c, nil
}

var (
	yamlLineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (.*) not found in type .*$`)
	yamlDupRE     = regexp.MustCompile(`^(?:field (.*) already set in type .*|mapping key "(.*)" already defined at line \d+)$`)
	yamlTypeRE    = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*?)(?:\\.\\.\\.)?`)? into (.*)$")
)

// yamlError turns a yaml.v3 error into ErrInvalidConfig naming the line
// and, found in the document's node tree, the column of the first problem.
func yamlError(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		var pe *posErr
		if errors.As(err, &pe) { // from Quantity.UnmarshalYAML
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			msg = "line " + m[1] + ": " + m[2]
		}
		return fmt.Errorf("%w: %s", ErrInvalidConfig, msg)
	}
	m := yamlLineRE.FindStringSubmatch(te.Errors[0])
	if m == nil {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, te.Errors[0])
	}
	line, _ := strconv.Atoi(m[1])
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	msg, match := m[2], func(*yaml.Node, bool) bool { return false }
	if f := yamlUnknownRE.FindStringSubmatch(msg); f != nil {
		msg = fmt.Sprintf("unknown field %q", f[1])
		match = func(n *yaml.Node, key bool) bool { return key && n.Value == f[1] }
	} else if f := yamlDupRE.FindStringSubmatch(msg); f != nil {
		name := f[1] + f[2]
		msg = fmt.Sprintf("field %q set twice", name)
		match = func(n *yaml.Node, key bool) bool { return key && n.Value == name }
	} else if f := yamlTypeRE.FindStringSubmatch(msg); f != nil {
		msg = fmt.Sprintf("%s is not %s", describe(f[1], f[2]), typeWord(f[3]))
		match = func(n *yaml.Node, key bool) bool {
			return !key && n.ShortTag() == f[1] && strings.HasPrefix(n.Value, f[2])
		}
	}
	col := 0
	walkYAML(&root, false, func(n *yaml.Node, key bool) bool {
		if n.Line == line && match(n, key) {
			col = n.Column
			return true
		}
		return false
	})
	if col > 0 {
		return fmt.Errorf("%w: line %d column %d: %s", ErrInvalidConfig, line, col, msg)
	}
	return fmt.Errorf("%w: line %d: %s", ErrInvalidConfig, line, msg)
}

// walkYAML visits nodes in document order until visit returns true; key
// says a node is a mapping key.
func walkYAML(n *yaml.Node, key bool, visit func(n *yaml.Node, key bool) bool) bool {
	if visit(n, key) {
		return true
	}
	for i, c := range n.Content {
		if walkYAML(c, n.Kind == yaml.MappingNode && i%2 == 0, visit) {
			return true
		}
	}
	return false
}

// describe names a YAML value by its tag.
func describe(tag, v string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!str":
		return "the string " + strconv.Quote(v)
	case "!!int", "!!float":
		return "the number " + v
	case "!!bool":
		return "the boolean " + v
	case "!!null":
		return "null"
	}
	return tag + " " + strconv.Quote(v)
}

// describeJSON names a JSON value.
func describeJSON(raw []byte) string {
	switch raw[0] {
	case '[':
		return "a list"
	case '{':
		return "a mapping"
	case '"':
		if len(raw) > 40 {
			return "a string"
		}
		return "the string " + string(raw)
	case 't', 'f':
		return "the boolean " + string(raw)
	case 'n':
		return "null"
	}
	return "the number " + string(raw)
}

// typeWord names a Go type of the pools file for people.
func typeWord(t string) string {
	switch strings.ReplaceAll(t, "pool.", "") {
	case "bool":
		return "true or false"
	case "string", "Kind", "QuotaMode", "SnapshotMode", "Erase":
		return "a string"
	case "int64":
		return "a whole number"
	case "[]Spec":
		return "a list of pools"
	case "Spec":
		return "a pool (a mapping)"
	case "[]DiskSpec":
		return "a list of disks"
	case "DiskSpec":
		return "a disk (a mapping)"
	case "[]string":
		return "a list of strings"
	case "Config":
		return "a mapping with pools:"
	}
	return t
}

// posErr is an error at a position of the pools file.
type posErr struct {
	line, col int
	msg       string
}

func (e *posErr) Error() string { return fmt.Sprintf("line %d column %d: %s", e.line, e.col, e.msg) }

// posError is ErrInvalidConfig at byte offset off of data.
func posError(data []byte, off int64, msg string) error {
	line, col := lineCol(data, off)
	return fmt.Errorf("%w: %w", ErrInvalidConfig, &posErr{line, col, msg})
}

// lineCol converts a byte offset to a 1-based line and column (in runes).
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[start:]) + 1
}

// decodeJSON decodes the native JSON form. A walk over its tokens first
// finds, with their offsets, what the strict decode would refuse without
// saying where: unknown or repeated keys and values of the wrong type.
func decodeJSON(data []byte) (*Config, error) {
	var c Config
	w := &jsonWalk{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	if err := w.value(reflect.TypeOf(c)); err != nil {
		if !errors.Is(err, ErrInvalidConfig) {
			return nil, jsonError(data, err)
		}
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, jsonError(data, err)
	}
	return &c, nil
}

// jsonError is ErrInvalidConfig with jsonMessage.
func jsonError(data []byte, err error) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, jsonMessage(data, err))
}

// jsonMessage is an encoding/json error with its line and column where it
// has an offset.
func jsonMessage(data []byte, err error) string {
	msg := strings.TrimPrefix(err.Error(), "json: ")
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return at(data, syntax.Offset-1, msg)
	case errors.As(err, &typ):
		return at(data, typ.Offset-1, msg)
	}
	return msg
}

// at prefixes msg with the line and column of offset off of data.
func at(data []byte, off int64, msg string) string {
	line, col := lineCol(data, off)
	return (&posErr{line, col, msg}).Error()
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// jsonWalk checks a JSON document against a Go type, token by token.
type jsonWalk struct {
	data []byte
	dec  *json.Decoder
}

// next is the offset of the next token's first byte.
func (w *jsonWalk) next() int64 {
	off := w.dec.InputOffset()
	for off < int64(len(w.data)) && strings.IndexByte(" \t\r\n:,", w.data[off]) >= 0 {
		off++
	}
	return off
}

// value checks the next value against t.
func (w *jsonWalk) value(t reflect.Type) error {
	start := w.next()
	if start >= int64(len(w.data)) {
		return posError(w.data, start, "unexpected end of JSON input")
	}
	if t.Kind() == reflect.Pointer {
		if w.data[start] == 'n' {
			_, err := w.dec.Token()
			return err
		}
		t = t.Elem()
	}
	opaque := reflect.PointerTo(t).Implements(jsonUnmarshaler)
	switch {
	case !opaque && t.Kind() == reflect.Struct && w.data[start] == '{':
		return w.object(t)
	case !opaque && t.Kind() == reflect.Slice && w.data[start] == '[':
		if _, err := w.dec.Token(); err != nil {
			return err
		}
		for w.dec.More() {
			if err := w.value(t.Elem()); err != nil {
				return err
			}
		}
		_, err := w.dec.Token()
		return err
	}
	var raw json.RawMessage
	if err := w.dec.Decode(&raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return posError(w.data, start, fmt.Sprintf("%s is not %s", describeJSON(raw), typeWord(t.String())))
		}
		return posError(w.data, start, strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// object checks an object's keys (exact names, each once) and values.
func (w *jsonWalk) object(t reflect.Type) error {
	if _, err := w.dec.Token(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for w.dec.More() {
		at := w.next()
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		f, ok := jsonField(t, key)
		switch {
		case !ok:
			return posError(w.data, at, fmt.Sprintf("unknown field %q", key))
		case seen[key]:
			return posError(w.data, at, fmt.Sprintf("field %q set twice", key))
		}
		seen[key] = true
		if err := w.value(f.Type); err != nil {
			return err
		}
	}
	_, err := w.dec.Token()
	return err
}

// jsonField is the field of struct t whose JSON name is key, exactly.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name == key && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
