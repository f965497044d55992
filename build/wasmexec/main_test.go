package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRun builds a small wasip1 command and runs it: it sees its arguments, reads a file by
// a path relative to the working directory (PWD, as go test sets it), and its exit code is
// run's.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	prog := `package main

import (
	"fmt"
	"os"
)

func main() {
	b, err := os.ReadFile("input.txt")
	if err != nil {
		fmt.Println("read:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s", os.Args[1], b)
	os.Exit(3)
}
`
	for name, body := range map[string]string{"main.go": prog, "go.mod": "module probe\n\ngo 1.24\n", "input.txt": "hello"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wasm := filepath.Join(dir, "probe.wasm")
	build := exec.Command("go", "build", "-o", wasm, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Chdir(dir)
	t.Setenv("PWD", dir)
	out := filepath.Join(dir, "stdout")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = f
	code, err := run(wasm, []string{"arg1"})
	os.Stdout = stdout
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if code != 3 || string(got) != "arg1 hello" {
		t.Fatalf("exit %d, stdout %q; want exit 3, %q", code, got, "arg1 hello")
	}
}
