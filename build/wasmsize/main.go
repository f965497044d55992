// Command wasmsize prints the size of a Wasm module next to a baseline module's (the no-op
// plugin: what the Go runtime and the SDK cost by themselves) as a ratio, and with -names
// the code bytes of each Go package in a module built with its name section (wasmbuild
// -ldflags -s=false), the largest first:
//
//	go run ./build/wasmsize [-names build/out/usageplans-names.wasm] [-top 20] module.wasm baseline.wasm
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	names := flag.String("names", "", "a build of the module with its name section, for the code per package")
	top := flag.Int("top", 20, "packages to list")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: wasmsize [-names module-with-names.wasm] [-top n] module.wasm baseline.wasm")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *names, *top); err != nil {
		fmt.Fprintln(os.Stderr, "wasmsize:", err)
		os.Exit(1)
	}
}

func run(module, baseline, names string, top int) error {
	m, err := os.Stat(module)
	if err != nil {
		return err
	}
	b, err := os.Stat(baseline)
	if err != nil {
		return err
	}
	fmt.Printf("%-40s %9d B\n", module, m.Size())
	fmt.Printf("%-40s %9d B\n", baseline, b.Size())
	fmt.Printf("%-40s %9d B, %.2f× the baseline\n", "module - baseline", m.Size()-b.Size(), float64(m.Size())/float64(b.Size()))
	if names == "" {
		return nil
	}
	data, err := os.ReadFile(names)
	if err != nil {
		return err
	}
	sizes, err := codePerPackage(data)
	if err != nil {
		return fmt.Errorf("%s: %w", names, err)
	}
	type row struct {
		pkg  string
		size int
	}
	var rows []row
	total := 0
	for p, n := range sizes {
		rows = append(rows, row{p, n})
		total += n
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].size > rows[j].size || rows[i].size == rows[j].size && rows[i].pkg < rows[j].pkg
	})
	fmt.Printf("\ncode per package (%s: %d B of function bodies)\n", names, total)
	for i, r := range rows {
		if i == top {
			break
		}
		fmt.Printf("%9d B  %s\n", r.size, r.pkg)
	}
	return nil
}

// codePerPackage sums the function body sizes of a module by Go package, from the code
// section and the function names of the name section.
func codePerPackage(data []byte) (map[string]int, error) {
	if len(data) < 8 || string(data[:4]) != "\x00asm" {
		return nil, errors.New("not a Wasm module")
	}
	r := &reader{b: data, off: 8}
	imported := 0 // function imports come first in the function index space
	var bodies []int
	fnames := map[int]string{}
	for r.off < len(r.b) {
		id := r.byte()
		size := int(r.uleb())
		end := r.off + size
		if r.err != nil || end > len(r.b) {
			return nil, errors.New("truncated section")
		}
		s := &reader{b: r.b[:end], off: r.off}
		switch id {
		case 2: // import
			for n := s.uleb(); n > 0 && s.err == nil; n-- {
				s.name()
				s.name()
				switch s.byte() {
				case 0:
					s.uleb()
					imported++
				case 1:
					s.byte()
					s.limits()
				case 2:
					s.limits()
				case 3:
					s.byte()
					s.byte()
				}
			}
		case 10: // code
			for n := s.uleb(); n > 0 && s.err == nil; n-- {
				size := int(s.uleb())
				bodies = append(bodies, size)
				s.off += size
			}
		case 0: // custom
			if s.name() == "name" {
				for s.off < end && s.err == nil {
					sub := s.byte()
					subEnd := s.off + int(s.uleb())
					if sub == 1 {
						for n := s.uleb(); n > 0 && s.err == nil; n-- {
							idx := int(s.uleb())
							fnames[idx] = s.name()
						}
					}
					s.off = subEnd
				}
			}
		}
		if s.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, s.err)
		}
		r.off = end
	}
	if len(fnames) == 0 {
		return nil, errors.New("no function names: build it with -ldflags -s=false")
	}
	out := map[string]int{}
	for i, size := range bodies {
		out[packageOf(fnames[imported+i])] += size
	}
	return out, nil
}

// packageOf is the package of a function name as Go's Wasm linker writes it, with '/'
// (and the receiver's "(*T)") turned into '_': "github.com_x_y.__T_.M" → "github.com_x_y",
// "encoding_json.Unmarshal" → "encoding_json".
func packageOf(sym string) string {
	from := 0
	if us, dot := strings.IndexByte(sym, '_'), strings.IndexByte(sym, '.'); dot >= 0 && us > dot+1 {
		from = us // the first segment is a domain name: "github.com_..."
	}
	if dot := strings.IndexByte(sym[from:], '.'); dot >= 0 {
		return sym[:from+dot]
	}
	if sym == "" {
		return "(unnamed)"
	}
	return sym
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.err = errors.New("truncated")
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) uleb() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.err = errors.New("bad LEB128")
	return 0
}

func (r *reader) name() string {
	n := int(r.uleb())
	if r.err != nil || r.off+n > len(r.b) {
		r.err = errors.New("truncated name")
		return ""
	}
	r.off += n
	return string(r.b[r.off-n : r.off])
}

func (r *reader) limits() {
	if r.byte()&1 != 0 {
		r.uleb()
	}
	r.uleb()
}
