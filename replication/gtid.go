package replication

import (
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ParseGTIDs parses a GTID value as a node of that flavor prints it into a
// go-mysql set: a MariaDB position ("0-1-42,1-2-7": one
// domain-server_id-seq_no per domain) as a *mysql.MariadbGTIDSet, a MySQL
// set ("uuid:1-5:7,\nuuid2:1-3") as a *mysql.MysqlGTIDSet. Surrounding
// white space is ignored and the empty string is the empty set.
//
// MariaDB positions are checked more strictly than go-mysql does: an empty
// element ("0-1-5,"), a domain listed twice and the all-zero GTID "0-0-0"
// are errors, where go-mysql would silently merge or mangle them.
func ParseGTIDs(flavor Flavor, s string) (mysql.GTIDSet, error) {
	s = strings.TrimSpace(s)
	switch flavor {
	case MariaDB:
		return parseMariaDBPos(s)
	case MySQL:
		set, err := mysql.ParseMysqlGTIDSet(s)
		if err != nil {
			return nil, fmt.Errorf("MySQL GTID set %q: %w", s, err)
		}
		return set, nil
	default:
		return nil, fmt.Errorf("unsupported flavor %d", int(flavor))
	}
}

// parseMariaDBPos parses a MariaDB GTID position.
func parseMariaDBPos(s string) (*mysql.MariadbGTIDSet, error) {
	set := &mysql.MariadbGTIDSet{Sets: make(map[uint32]*mysql.MariadbGTID)}
	if s == "" {
		return set, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("MariaDB GTID position %q: empty element", s)
		}
		g, err := mysql.ParseMariadbGTID(part)
		if err != nil {
			return nil, fmt.Errorf("MariaDB GTID position %q: %w", s, err)
		}
		if g.DomainID == 0 && g.ServerID == 0 && g.SequenceNumber == 0 {
			return nil, fmt.Errorf("MariaDB GTID position %q: 0-0-0 is no transaction", s)
		}
		if _, dup := set.Sets[g.DomainID]; dup {
			return nil, fmt.Errorf("MariaDB GTID position %q: domain %d listed twice", s, g.DomainID)
		}
		set.Sets[g.DomainID] = g
	}
	return set, nil
}

// Contains reports whether have covers every transaction of want: for
// MySQL sets, set inclusion; for MariaDB positions, go-mysql's rule: every
// domain of want is in have with a sequence number at least as high (the
// server_id is not compared). An empty or nil want is always contained; a
// nil have contains only that; sets of different flavors never contain
// each other.
func Contains(have, want mysql.GTIDSet) bool {
	if isEmptySet(want) {
		return true
	}
	if isNilSet(have) {
		return false
	}
	return have.Contain(want)
}

// isNilSet reports whether s is nil, also as a typed nil pointer inside the
// interface, on which go-mysql's methods would panic.
func isNilSet(s mysql.GTIDSet) bool {
	switch v := s.(type) {
	case nil:
		return true
	case *mysql.MariadbGTIDSet:
		return v == nil
	case *mysql.MysqlGTIDSet:
		return v == nil
	}
	return false
}

// isEmptySet reports whether s is nil or holds no transaction.
func isEmptySet(s mysql.GTIDSet) bool {
	return isNilSet(s) || s.IsEmpty()
}

// Errant returns the transactions the candidate has and the active does
// not, and whether there are any. Before promoting a candidate, a non-empty
// result means the candidate holds writes the active never saw (split
// brain, or a write on the passive): promoting it would fork history.
//
// MySQL sets: the set difference candidate − active, as a *mysql.MysqlGTIDSet.
//
// MariaDB positions list only the last GTID per domain, so the difference
// is judged per domain and returned as a *mysql.MariadbGTIDSet holding the
// candidate's GTID for each offending domain. A domain is errant when the
// active does not have it, when the candidate's seq_no is higher than the
// active's (the candidate is ahead there), or when the seq_nos are equal
// but the server_ids differ (both committed a different transaction with
// the same number: divergence). A lower candidate seq_no is taken as
// covered, which a position cannot prove or refute.
//
// A nil or empty candidate has nothing errant. A nil active is empty.
// Sets of different flavors cannot be compared: all of the candidate is
// reported errant.
func Errant(active, candidate mysql.GTIDSet) (mysql.GTIDSet, bool) {
	if isEmptySet(candidate) {
		return candidate, false
	}
	switch c := candidate.(type) {
	case *mysql.MariadbGTIDSet:
		a, ok := active.(*mysql.MariadbGTIDSet)
		if !ok && !isNilSet(active) {
			return candidate.Clone(), true
		}
		out := mariaDBErrant(a, c)
		return out, !out.IsEmpty()
	case *mysql.MysqlGTIDSet:
		a, ok := active.(*mysql.MysqlGTIDSet)
		if !ok && !isNilSet(active) {
			return candidate.Clone(), true
		}
		out := mysqlMinus(c, a)
		return out, !out.IsEmpty()
	default:
		return candidate.Clone(), true
	}
}

// mariaDBErrant applies Errant's per-domain rule; active may be nil.
func mariaDBErrant(active, candidate *mysql.MariadbGTIDSet) *mysql.MariadbGTIDSet {
	out := &mysql.MariadbGTIDSet{Sets: make(map[uint32]*mysql.MariadbGTID)}
	for domain, c := range candidate.Sets {
		if c == nil {
			continue
		}
		var a *mysql.MariadbGTID
		if active != nil {
			a = active.Sets[domain]
		}
		switch {
		case a == nil,
			c.SequenceNumber > a.SequenceNumber,
			c.SequenceNumber == a.SequenceNumber && c.ServerID != a.ServerID:
			out.Sets[domain] = c.Clone()
		}
	}
	return out
}

// mysqlMinus returns a − b for MySQL GTID sets; b may be nil.
func mysqlMinus(a, b *mysql.MysqlGTIDSet) *mysql.MysqlGTIDSet {
	out := mysql.NewMysqlGTIDSet()
	for sid, tags := range *a {
		for tag, have := range tags {
			var sub mysql.IntervalSlice
			if b != nil {
				sub = (*b)[sid][tag]
			}
			rest := intervalsMinus(have.Normalize(), sub.Normalize())
			if len(rest) == 0 {
				continue
			}
			if out[sid] == nil {
				out[sid] = make(map[mysql.Tag]mysql.IntervalSlice)
			}
			out[sid][tag] = rest
		}
	}
	return &out
}

// intervalsMinus returns a − b for sorted, merged slices of half-open
// [Start, Stop) intervals.
func intervalsMinus(a, b mysql.IntervalSlice) mysql.IntervalSlice {
	var out mysql.IntervalSlice
	j := 0
	for _, iv := range a {
		start := iv.Start
		for j < len(b) && b[j].Stop <= start {
			j++
		}
		for k := j; k < len(b) && b[k].Start < iv.Stop; k++ {
			if b[k].Start > start {
				out = append(out, mysql.Interval{Start: start, Stop: b[k].Start})
			}
			if b[k].Stop > start {
				start = b[k].Stop
			}
		}
		if start < iv.Stop {
			out = append(out, mysql.Interval{Start: start, Stop: iv.Stop})
		}
	}
	return out
}
