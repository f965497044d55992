package keys

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

const hashHelp = `Usage: printf %s "$KEY" | usageplans keys hash [--prefix P]

Reads one key value from stdin and prints its SHA-256 in hex: the valueSha256 to put in
plugin.json. One trailing newline (LF or CRLF) is removed, nothing else. A value is not
accepted as an argument: it would land in the shell's history. With --prefix, a value
starting with P must carry a valid checksum (see keys check).
`

const checkHelp = `Usage: printf %s "$KEY" | usageplans keys check [--prefix P]

Reads one key value from stdin and checks the checksum of a value made by
"keys generate --prefix P": exit status 0 and the prefix when it holds, 1 when it does
not (a mistyped or truncated value, or one without a checksum). With --prefix, the
value must also start with P. The value is never printed.
`

// readValue reads one value from stdin: one trailing newline removed, nothing else, so
// that a space or a second line is reported rather than silently dropped.
func readValue(env Env, cmd string, fs *flag.FlagSet) (string, int, bool) {
	if fs.NArg() != 0 {
		// The arguments are not echoed: one of them may be the key.
		return "", usageError(env, cmd, "reads the value from stdin, not from %d argument(s) (a key on the command line lands in the shell's history): printf %%s \"$KEY\" | usageplans keys %s", fs.NArg(), cmd), false
	}
	if env.Stdin == nil {
		return "", usageError(env, cmd, "no stdin"), false
	}
	b, err := io.ReadAll(io.LimitReader(env.Stdin, 4096))
	if err != nil {
		return "", fail(env, cmd, err), false
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		s = t
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	if s == "" {
		return "", fail(env, cmd, fmt.Errorf("stdin is empty: printf %%s \"$KEY\" | usageplans keys %s", cmd)), false
	}
	if err := validValue(s); err != nil {
		return "", fail(env, cmd, fmt.Errorf("the value on stdin %v", err)), false
	}
	return s, 0, true
}

func hashCmd(args []string, env Env) int {
	fs := flag.NewFlagSet("hash", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "values starting with `P` must carry a valid checksum")
	if st, ok := parseFlags(fs, hashHelp, args, env); !ok {
		return st
	}
	v, st, ok := readValue(env, "hash", fs)
	if !ok {
		return st
	}
	if *prefix != "" && strings.HasPrefix(v, *prefix) {
		if _, err := checkChecksum(v); err != nil {
			return fail(env, "hash", fmt.Errorf("the value starts with %q but %v", *prefix, err))
		}
	}
	fmt.Fprintln(env.Stdout, digest(v))
	return exitOK
}

func checkCmd(args []string, env Env) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "the value must start with `P`")
	if st, ok := parseFlags(fs, checkHelp, args, env); !ok {
		return st
	}
	v, st, ok := readValue(env, "check", fs)
	if !ok {
		return st
	}
	if *prefix != "" && !strings.HasPrefix(v, *prefix) {
		return fail(env, "check", fmt.Errorf("the value does not start with %q", *prefix))
	}
	p, err := checkChecksum(v)
	if err != nil {
		return fail(env, "check", err)
	}
	if *prefix != "" && p != *prefix {
		return fail(env, "check", fmt.Errorf("the checksum holds, but for prefix %q, not %q", p, *prefix))
	}
	if len(p) > maxPrefix { // no prefix of ours is this long: a coincidence, and maybe most of a key
		return fail(env, "check", fmt.Errorf("the checksum holds, but the prefix would be %d characters (at most %d)", len(p), maxPrefix))
	}
	fmt.Fprintf(env.Stdout, "checksum valid, prefix %q\n", p)
	return exitOK
}
