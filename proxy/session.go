package proxy

// What tandem knows about a client session's state on its node: enough to
// rebuild the session on another node, or to know that it cannot.

import (
	"bytes"
	"maps"
	"slices"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Facts is the state of one client session as tandem tracks it.
type Facts struct {
	// InTransaction is set while the node reports SERVER_STATUS_IN_TRANS.
	InTransaction bool
	// Autocommit mirrors SERVER_STATUS_AUTOCOMMIT.
	Autocommit bool
	// Schema is the current database ("" for none).
	Schema string
	// Collation is the collation id from the handshake.
	Collation byte
	// Settings are the session's SET statements (including SET NAMES and
	// SET CHARACTER SET), in the order they were run, for replay.
	Settings []string
	// Prepared maps the node's statement id to its SQL text.
	Prepared map[uint32]string
	// LastInsertID is the last non-zero insert id an OK packet reported:
	// what LAST_INSERT_ID() returns, restored on a move.
	LastInsertID uint64
	// UserVars is set when a statement may have given a user variable a
	// value tandem cannot replay (from a query, a procedure's OUT
	// parameter): a planned move reads them on the old node
	// (uservars.go); a failover cannot.
	UserVars bool
	// Pinned says why the session cannot be rebuilt elsewhere ("" if it
	// can): temporary tables, named locks, LOCK TABLES, user variables,
	// SQL-level PREPARE.
	Pinned string
}

// clone returns a deep copy.
func (f *Facts) clone() Facts {
	c := *f
	c.Settings = slices.Clone(f.Settings)
	c.Prepared = maps.Clone(f.Prepared)
	return c
}

func (f *Facts) reset(schema string, collation byte) {
	*f = Facts{Schema: schema, Collation: collation, Autocommit: true}
}

func (f *Facts) noteStatus(st uint16) {
	f.InTransaction = st&mysql.SERVER_STATUS_IN_TRANS != 0
	f.Autocommit = st&mysql.SERVER_STATUS_AUTOCOMMIT != 0
}

func (f *Facts) notePrepare(id uint32, sql string) {
	if f.Prepared == nil {
		f.Prepared = make(map[uint32]string)
	}
	f.Prepared[id] = sql
}

func (f *Facts) noteStmtClose(id uint32) { delete(f.Prepared, id) }

func (f *Facts) pin(why string) {
	if f.Pinned == "" {
		f.Pinned = why
	}
}

// maxSettings bounds how many SET statements a session keeps for replay; a
// session that sets more is pinned rather than allowed to grow without end.
const maxSettings = 64

// noteQuery updates the facts from the text of a COM_QUERY before it runs.
// whole is false when text is only the beginning of a longer statement. It
// is deliberately conservative: anything it is unsure of pins the session,
// which costs only that the session is closed, not moved, on a failover.
func (f *Facts) noteQuery(text []byte, whole bool) {
	if !whole {
		// tandem sees only the beginning of a long statement: what it
		// does further on (user variables, GET_LOCK, a second
		// statement) is unknown, so the session cannot be moved safely.
		if kw, _ := firstWord(text); kw == "SET" {
			f.pin("too many or too long SET statements")
		} else {
			f.pin("a statement longer than tandem inspects (8 KiB)")
		}
		return
	}
	if hasExecutableComment(text) {
		// /*! ... */ and /*M! ... */ run on the server; tandem does not
		// look inside them.
		f.pin("executable comments (/*! ... */)")
		return
	}
	if rest := afterFirstStatement(text); len(rest) > 0 {
		// Several statements in one COM_QUERY: judge each for state
		// that pins; record none for replay (replaying the text would
		// run the others again).
		for stmt := text; len(stmt) > 0; stmt = afterFirstStatement(stmt) {
			var g Facts
			g.reset(f.Schema, f.Collation)
			g.noteQuery(firstStatement(stmt), true)
			if g.Pinned != "" {
				f.pin(g.Pinned)
				return
			}
			if len(g.Settings) > 0 || g.Schema != f.Schema {
				f.pin("SET or USE inside a multi-statement query")
				return
			}
		}
		return
	}
	kw, rest := firstWord(text)
	switch kw {
	case "SELECT", "DO", "CALL", "WITH", "VALUES":
		if hasUserVar(text) && (kw == "CALL" || assignsUserVar(text)) {
			f.UserVars = true
		}
		if indexFold(text, "GET_LOCK") >= 0 {
			f.pin("named locks (GET_LOCK)")
		}
	case "USE":
		db, _ := firstIdent(rest)
		if db != "" {
			f.Schema = db
		}
	case "SET":
		if hasUserVar(text) && !literalUserVars(rest) {
			f.UserVars = true
			return
		}
		w, after := firstWord(rest)
		switch w {
		case "TRANSACTION", "GLOBAL", "PASSWORD", "DEFAULT":
			return // not session state (TRANSACTION applies to the next one only)
		case "ROLE":
			f.pin("SET ROLE")
			return
		case "STATEMENT":
			// SET STATEMENT v=x FOR stmt: v lasts for stmt only; judge stmt.
			if i := indexFold(after, " FOR "); i >= 0 {
				f.noteQuery(after[i+5:], whole)
			}
			return
		}
		if bytesContainFold(rest, "@@GLOBAL.") {
			return
		}
		if !whole || len(f.Settings) >= maxSettings {
			f.pin("too many or too long SET statements")
			return
		}
		f.Settings = append(f.Settings, string(text))
	case "CREATE":
		// CREATE [OR REPLACE] TEMPORARY TABLE
		w, r := firstWord(rest)
		if w == "OR" {
			_, r = firstWord(r)
			w, _ = firstWord(r)
		}
		if w == "TEMPORARY" {
			f.pin("temporary tables")
		}
	case "LOCK":
		f.pin("LOCK TABLES")
	default:
		// UPDATE t SET c = (@x := c), INSERT ... SELECT ... INTO @x.
		if hasUserVar(text) && assignsUserVar(text) {
			f.UserVars = true
		}
	case "PREPARE":
		f.pin("SQL-level PREPARE")
	}
}

// firstWord returns the first keyword of s in upper case, skipping spaces,
// comments and an opening parenthesis, and the text after it.
func firstWord(s []byte) (string, []byte) {
	s = skipSpace(s)
	for len(s) > 0 && s[0] == '(' {
		s = skipSpace(s[1:])
	}
	i := 0
	for i < len(s) && isIdentByte(s[i]) && i < 16 {
		i++
	}
	var up [16]byte
	for j := 0; j < i; j++ {
		c := s[j]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[j] = c
	}
	// The words tandem acts on come back as constants (a map lookup with
	// a converted key does not allocate); any other word is "?", which no
	// caller matches.
	if kw, ok := keywords[string(up[:i])]; ok {
		return kw, s[i:]
	}
	if i == 0 {
		return "", s[i:]
	}
	return "?", s[i:]
}

// keywords are the first words noteQuery, parseKill and query look at.
var keywords = func() map[string]string {
	m := map[string]string{}
	for _, w := range []string{"SELECT", "DO", "CALL", "WITH", "VALUES", "USE", "SET", "CREATE", "LOCK",
		"PREPARE", "KILL", "HARD", "SOFT", "CONNECTION", "QUERY", "ID", "USER", "TRANSACTION", "GLOBAL",
		"PASSWORD", "DEFAULT", "ROLE", "STATEMENT", "OR", "TEMPORARY", "COMMIT", "NAMES"} {
		m[w] = w
	}
	return m
}()

// firstIdent returns the identifier at the start of s, unquoting backticks
// (a doubled backtick inside stands for one).
func firstIdent(s []byte) (string, []byte) {
	s = skipSpace(s)
	if len(s) > 0 && s[0] == '`' {
		var name []byte
		for i := 1; i < len(s); i++ {
			if s[i] == '`' {
				if i+1 < len(s) && s[i+1] == '`' {
					name = append(name, '`')
					i++
					continue
				}
				return string(name), s[i+1:]
			}
			name = append(name, s[i])
		}
		return "", nil
	}
	i := 0
	for i < len(s) && (isIdentByte(s[i]) || s[i] == '$' || s[i] >= 0x80) {
		i++
	}
	return string(s[:i]), s[i:]
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// skipSpace skips whitespace and comments (/* */, -- and #).
func skipSpace(s []byte) []byte {
	for len(s) > 0 {
		switch {
		case s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == ';':
			s = s[1:]
		case len(s) >= 2 && s[0] == '/' && s[1] == '*':
			end := indexOf(s[2:], "*/")
			if end < 0 {
				return nil
			}
			s = s[2+end+2:]
		case s[0] == '#' || len(s) >= 3 && s[0] == '-' && s[1] == '-' && (s[2] == ' ' || s[2] == '\t'):
			end := indexOf(s, "\n")
			if end < 0 {
				return nil
			}
			s = s[end+1:]
		default:
			return s
		}
	}
	return s
}

func indexOf(s []byte, sep string) int { return bytes.Index(s, []byte(sep)) }

// hasExecutableComment reports whether s holds a /*! or /*M! comment.
func hasExecutableComment(s []byte) bool {
	return bytes.Contains(s, []byte("/*!")) || bytes.Contains(s, []byte("/*M!"))
}

// afterFirstStatement returns what follows the first statement of s (after
// a ';' outside quotes and comments), or nil if there is nothing but
// spaces, comments and semicolons.
func afterFirstStatement(s []byte) []byte {
	end := statementEnd(s)
	if end >= len(s) {
		return nil
	}
	rest := skipSpace(s[end:])
	if len(rest) == 0 {
		return nil
	}
	return rest
}

// firstStatement returns s up to its first statement's end.
func firstStatement(s []byte) []byte { return s[:statementEnd(s)] }

// statementEnd returns the index of the first ';' outside quotes and
// comments, or len(s).
func statementEnd(s []byte) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ';':
			return i
		case c == '\'' || c == '"' || c == '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c != '`' {
					i++
				}
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := indexOf(s[i+2:], "*/")
			if end < 0 {
				return len(s)
			}
			i += 2 + end + 1
		case c == '#' || c == '-' && i+2 < len(s) && s[i+1] == '-' && (s[i+2] == ' ' || s[i+2] == '\t'):
			end := indexOf(s[i:], "\n")
			if end < 0 {
				return len(s)
			}
			i += end
		}
	}
	return len(s)
}

// indexFold is the index of sep (upper case) in s in any ASCII case, or -1.
func indexFold(s []byte, sep string) int {
	for i := 0; i+len(sep) <= len(s); i++ {
		j := 0
		for ; j < len(sep); j++ {
			c := s[i+j]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != sep[j] {
				break
			}
		}
		if j == len(sep) {
			return i
		}
	}
	return -1
}

func bytesContainFold(s []byte, sub string) bool { return indexFold(s, sub) >= 0 }

// hasUserVar reports whether s mentions a user variable (@name, not
// @@system). Conservative: an '@' inside a string literal counts too.
func hasUserVar(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '@' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '@' {
			i++
			continue
		}
		return true
	}
	return false
}

// assignsUserVar reports whether a statement that mentions a user variable
// may assign one: with := or SELECT ... INTO. Conservative: the words may
// be inside a string literal.
func assignsUserVar(s []byte) bool {
	return indexOf(s, ":=") >= 0 || indexFold(s, "INTO") >= 0
}

// literalUserVars reports whether the assignments of a SET statement (the
// text after SET) give every user variable a literal value (a number, a
// quoted string, NULL, TRUE, FALSE, X'..', 0x..): such a statement is
// replayed on a new node like any other setting. Assignments to system
// variables in the same statement are skipped over.
func literalUserVars(s []byte) bool {
	for {
		s = skipSpace(s)
		if len(s) == 0 {
			return true
		}
		if s[0] != '@' || len(s) > 1 && s[1] == '@' {
			// A system variable: skip its assignment.
			end, ok := assignmentEnd(s)
			if !ok {
				return false
			}
			s = s[end:]
		} else {
			s = s[1:]
			var ok bool
			if s, ok = skipVarName(s); !ok {
				return false
			}
			s = skipSpace(s)
			switch {
			case len(s) >= 2 && s[0] == ':' && s[1] == '=':
				s = s[2:]
			case len(s) >= 1 && s[0] == '=':
				s = s[1:]
			default:
				return false
			}
			if s, ok = skipLiteral(skipSpace(s)); !ok {
				return false
			}
		}
		s = skipSpace(s)
		if len(s) == 0 {
			return true
		}
		if s[0] != ',' {
			return false
		}
		s = s[1:]
	}
}

// skipVarName skips a user variable's name after '@': plain or quoted.
func skipVarName(s []byte) ([]byte, bool) {
	if len(s) > 0 && (s[0] == '\'' || s[0] == '"' || s[0] == '`') {
		return skipQuoted(s)
	}
	i := 0
	for i < len(s) && (isIdentByte(s[i]) || s[i] == '$' || s[i] == '.' || s[i] >= 0x80) {
		i++
	}
	return s[i:], i > 0
}

// skipQuoted skips a quoted string or identifier starting at s[0].
func skipQuoted(s []byte) ([]byte, bool) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return s[i+1:], true
		}
	}
	return nil, false
}

// skipLiteral skips one literal value: a signed number, a quoted string
// (optionally with a _charset introducer), NULL, TRUE, FALSE, X'..', 0x...
func skipLiteral(s []byte) ([]byte, bool) {
	if len(s) == 0 {
		return nil, false
	}
	if s[0] == '_' { // _utf8mb4'text'
		i := 1
		for i < len(s) && isIdentByte(s[i]) {
			i++
		}
		s = skipSpace(s[i:])
		if len(s) == 0 || s[0] != '\'' {
			return nil, false
		}
	}
	switch c := s[0]; {
	case c == '\'' || c == '"':
		return skipQuoted(s)
	case (c == 'x' || c == 'X' || c == 'b' || c == 'B') && len(s) > 1 && s[1] == '\'':
		return skipQuoted(s[1:])
	case c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9':
		i := 1
		for i < len(s) && (isIdentByte(s[i]) || s[i] == '.' || (s[i] == '-' || s[i] == '+') && (s[i-1] == 'e' || s[i-1] == 'E')) {
			i++
		}
		return s[i:], true
	}
	w, rest := firstWordAny(s)
	switch w {
	case "NULL", "TRUE", "FALSE":
		return rest, true
	}
	return nil, false
}

// firstWordAny returns the leading letters of s in upper case.
func firstWordAny(s []byte) (string, []byte) {
	i := 0
	for i < len(s) && i < 8 && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	if i < len(s) && isIdentByte(s[i]) {
		return "", s
	}
	up := make([]byte, i)
	for j := range i {
		c := s[j]
		if c >= 'a' {
			c -= 'a' - 'A'
		}
		up[j] = c
	}
	return string(up), s[i:]
}

// assignmentEnd returns the index of the ',' that ends the assignment at
// the start of s (outside quotes and parentheses), or len(s). ok is false
// if the assignment mentions a user variable or is unterminated.
func assignmentEnd(s []byte) (int, bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			rest, ok := skipQuoted(s[i:])
			if !ok {
				return 0, false
			}
			i = len(s) - len(rest) - 1
		case c == '@' && (i+1 >= len(s) || s[i+1] != '@') && (i == 0 || s[i-1] != '@'):
			return 0, false
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			return i, true
		}
	}
	return len(s), true
}

// containsFold reports whether s contains sub (ASCII upper case) in any case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			c := s[i+j]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// killStmt is a parsed KILL statement that names a connection id.
type killStmt struct {
	modifier string // e.g. "HARD QUERY ", with a trailing space, or ""
	id       uint32
}

// parseKill recognises KILL [HARD|SOFT] [CONNECTION|QUERY] <id>. KILL QUERY
// ID <query id> and KILL USER name are not connection ids and are passed to
// the node as they are (ok is false).
func parseKill(s []byte) (k killStmt, ok bool) {
	w, rest := firstWord(s)
	if w != "KILL" {
		return k, false
	}
	w, r2 := firstWord(rest)
	if w == "HARD" || w == "SOFT" {
		k.modifier += w + " "
		rest = r2
		w, r2 = firstWord(rest)
	}
	switch w {
	case "CONNECTION", "QUERY":
		k.modifier += w + " "
		rest = r2
	case "ID", "USER":
		return k, false
	}
	rest = skipSpace(rest)
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || len(skipSpace(rest[i:])) != 0 {
		return k, false
	}
	id, err := strconv.ParseUint(string(rest[:i]), 10, 32)
	if err != nil {
		return k, false
	}
	k.id = uint32(id)
	return k, true
}

// skipQueryAttrs returns where the statement text starts in a COM_QUERY
// payload (command byte excluded) from a client that negotiated
// CLIENT_QUERY_ATTRIBUTES: after parameter_count, parameter_set_count and,
// when there are attributes, the null bitmap, new_params_bind_flag, each
// attribute's type and name, and the values of those not NULL (binary
// protocol encoding). ok is false when p ends inside the block or the
// block is malformed: then tandem cannot see the statement.
func skipQueryAttrs(p []byte) (off int, ok bool) {
	count, pos, ok := lenEncInt(p, 0)
	if !ok {
		return 0, false
	}
	if _, pos, ok = lenEncInt(p, pos); !ok { // parameter_set_count, always 1
		return 0, false
	}
	if count == 0 {
		return pos, true
	}
	if count > uint64(len(p)) { // each attribute takes at least 3 bytes
		return 0, false
	}
	n := int(count)
	nulls := pos
	pos += (n + 7) / 8
	if pos >= len(p) || p[pos] != 1 { // new_params_bind_flag: types follow
		return 0, false
	}
	pos++
	types := pos
	for range n {
		if pos += 2; pos > len(p) {
			return 0, false
		}
		l, next, ok := lenEncInt(p, pos)
		if !ok || l > uint64(len(p)-next) {
			return 0, false
		}
		pos = next + int(l)
	}
	// Types and names interleave: walk them again for the types.
	tpos := types
	for i := range n {
		typ := p[tpos]
		l, next, _ := lenEncInt(p, tpos+2)
		tpos = next + int(l)
		if p[nulls+i/8]&(1<<(i%8)) != 0 {
			continue
		}
		size, ok := binaryValueLen(typ, p, pos)
		if !ok || size > len(p)-pos {
			return 0, false
		}
		pos += size
	}
	return pos, true
}

// binaryValueLen returns the length of a value of type typ, binary
// protocol encoding, at p[pos:].
func binaryValueLen(typ byte, p []byte, pos int) (int, bool) {
	switch typ {
	case mysql.MYSQL_TYPE_NULL:
		return 0, true
	case mysql.MYSQL_TYPE_TINY:
		return 1, true
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		return 2, true
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_FLOAT:
		return 4, true
	case mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE:
		return 8, true
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_DATETIME,
		mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIME2:
		if pos >= len(p) {
			return 0, false
		}
		return 1 + int(p[pos]), true
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_JSON,
		mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET, mysql.MYSQL_TYPE_TINY_BLOB,
		mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_VAR_STRING,
		mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_GEOMETRY:
		l, next, ok := lenEncInt(p, pos)
		if !ok || l > uint64(len(p)-next) {
			return 0, false
		}
		return next - pos + int(l), true
	}
	return 0, false
}

// appendQuery appends a COM_QUERY payload of tandem's own for text: with an
// empty attribute block on a connection that negotiated
// CLIENT_QUERY_ATTRIBUTES (the node then expects one in every COM_QUERY).
func appendQuery(b []byte, caps uint32, text string) []byte {
	b = append(b, mysql.COM_QUERY)
	if caps&mysql.CLIENT_QUERY_ATTRIBUTES != 0 {
		b = append(b, 0, 1) // parameter_count 0, parameter_set_count 1
	}
	return append(b, text...)
}
