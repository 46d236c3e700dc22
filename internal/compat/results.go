// Package compat runs client test suites (go-sql-driver/mysql's own tests,
// MariaDB's mysql-test-run) once directly against a node and once through
// tandem, and compares their results test by test: tandem must be invisible
// to them (issue 10). cmd/compat drives it; the go-sql-driver comparison also
// runs in `make test` (compat_integration_test.go).
package compat

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Outcome is what one test did in one run.
type Outcome string

// The outcomes. A test absent from a run (the run stopped before it) has
// Missing.
const (
	Pass    Outcome = "pass"
	Fail    Outcome = "fail"
	Skip    Outcome = "skip"
	Missing Outcome = "missing"
)

// Results maps a test's name to its outcome in one run.
type Results map[string]Outcome

// Count returns how many tests had outcome o.
func (r Results) Count(o Outcome) int {
	n := 0
	for _, v := range r {
		if v == o {
			n++
		}
	}
	return n
}

// goTestEvent is one line of `go test -json` (test2json).
type goTestEvent struct {
	Action string
	Test   string
	Output string
}

// ParseGoTestJSON reads `go test -json` output and returns the outcome of
// every test and subtest that finished, and each test's output (for the
// report on a difference). Lines that are not JSON (a build error printed
// before the events) are an error: the run did not happen as planned.
func ParseGoTestJSON(r io.Reader) (Results, map[string]string, error) {
	res := Results{}
	out := map[string]*strings.Builder{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var ev goTestEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, nil, fmt.Errorf("go test -json line %d is not an event: %q", line, truncate(string(b), 200))
		}
		if ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "pass":
			res[ev.Test] = Pass
		case "fail":
			res[ev.Test] = Fail
		case "skip":
			res[ev.Test] = Skip
		case "output":
			sb := out[ev.Test]
			if sb == nil {
				sb = &strings.Builder{}
				out[ev.Test] = sb
			}
			if sb.Len() < 64*1024 {
				sb.WriteString(ev.Output)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading go test -json: %w", err)
	}
	outs := make(map[string]string, len(out))
	for k, v := range out {
		outs[k] = v.String()
	}
	return res, outs, nil
}

// mtrLine matches a result line of mysql-test-run, with or without the
// worker column of --parallel:
//
//	main.alias                               [ pass ]     12
//	main.alias                               w2 [ fail ]
//	main.insert_debug                        [ skipped ]  Requires debug build
var mtrLine = regexp.MustCompile(`^(\S+\.\S+?)(\s+'[^']*')?\s+(?:w\d+\s+)?\[ (pass|fail|skipped|disabled|retry-pass|retry-fail) \]`)

// ParseMTR reads mysql-test-run's output and returns each test's outcome:
// pass, fail, or skip (skipped or disabled). A test reported more than once
// (retries) keeps its last outcome. The second map holds, for each failed
// test, the lines mtr printed after its result line (the diff or error).
func ParseMTR(r io.Reader) (Results, map[string]string, error) {
	res := Results{}
	details := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var cur string
	var buf strings.Builder
	flush := func() {
		if cur != "" && buf.Len() > 0 {
			details[cur] = buf.String()
		}
		cur = ""
		buf.Reset()
	}
	for sc.Scan() {
		l := sc.Text()
		if m := mtrLine.FindStringSubmatch(l); m != nil {
			flush()
			name := m[1]
			if c := strings.TrimSpace(m[2]); c != "" {
				name += " " + c // a combination: main.foo 'innodb'
			}
			switch m[3] {
			case "pass", "retry-pass":
				res[name] = Pass
			case "fail", "retry-fail":
				res[name] = Fail
				cur = name
			default:
				res[name] = Skip
				if i := strings.Index(l, "]"); i >= 0 {
					details[name] = strings.TrimSpace(l[i+1:])
				}
			}
			continue
		}
		if cur != "" {
			if strings.HasPrefix(l, "---------------------") || strings.HasPrefix(l, "The servers were restarted") {
				flush()
				continue
			}
			if buf.Len() < 16*1024 {
				buf.WriteString(l)
				buf.WriteByte('\n')
			}
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading mysql-test-run output: %w", err)
	}
	return res, details, nil
}

// Diff is one test whose outcome differs between the two runs.
type Diff struct {
	Test   string
	Direct Outcome
	Via    Outcome
}

// Row is one suite's comparison: the line of the table.
type Row struct {
	Suite      string
	Tests      int // tests seen in either run
	PassDirect int
	PassVia    int
	SkipDirect int
	SkipVia    int
	FailDirect int
	FailVia    int
	Diffs      []Diff // sorted by test name
}

// Compare lines up the two runs of one suite. expected, when not nil, lists
// the tests that must appear: one absent from a run counts as Missing there
// (a run that stopped early differs).
func Compare(suite string, direct, via Results, expected []string) Row {
	names := map[string]bool{}
	for k := range direct {
		names[k] = true
	}
	for k := range via {
		names[k] = true
	}
	for _, k := range expected {
		names[k] = true
	}
	row := Row{Suite: suite, Tests: len(names)}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		d, ok := direct[k]
		if !ok {
			d = Missing
		}
		v, ok := via[k]
		if !ok {
			v = Missing
		}
		count(&row.PassDirect, &row.SkipDirect, &row.FailDirect, d)
		count(&row.PassVia, &row.SkipVia, &row.FailVia, v)
		if d != v {
			row.Diffs = append(row.Diffs, Diff{Test: k, Direct: d, Via: v})
		}
	}
	return row
}

func count(pass, skip, fail *int, o Outcome) {
	switch o {
	case Pass:
		*pass++
	case Skip:
		*skip++
	case Fail:
		*fail++
	}
}

// WriteTable prints the rows as a Markdown table (suite, tests, passed
// directly, passed through tandem, skipped, differing tests by name).
func WriteTable(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| suite | tests | passed direct | passed via tandem | failed direct / via | skipped direct / via | differing tests |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		diffs := "none"
		if len(r.Diffs) > 0 {
			parts := make([]string, 0, len(r.Diffs))
			for _, d := range r.Diffs {
				parts = append(parts, fmt.Sprintf("%s (%s direct, %s via tandem)", d.Test, d.Direct, d.Via))
			}
			diffs = strings.Join(parts, ", ")
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d / %d | %d / %d | %s |\n",
			r.Suite, r.Tests, r.PassDirect, r.PassVia, r.FailDirect, r.FailVia, r.SkipDirect, r.SkipVia, diffs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
