package chmigrate

import (
	"errors"
	"strings"
)

// Split cuts a migration file into statements at semicolons that are not
// inside a string, a quoted identifier or a comment: the native protocol
// takes one statement per query. Comments are kept with the statement
// they precede (ClickHouse ignores them); statements that are only
// comments or blanks are dropped.
func Split(sql string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		quote byte // ', " or ` while inside one
	)
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s != "" && !onlyComments(s) {
			out = append(out, s)
		}
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == '\\' && i+1 < len(sql) {
				i++
				cur.WriteByte(sql[i])
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
			cur.WriteByte(c)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				end = len(sql) - i
			}
			cur.WriteString(sql[i : i+end])
			i += end - 1
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			cur.WriteString(sql[i : i+2+end+2])
			i += 2 + end + 1
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quoted string or identifier")
	}
	flush()
	return out, nil
}

func onlyComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "--") {
			if strings.HasPrefix(l, "/*") && strings.HasSuffix(l, "*/") {
				continue
			}
			return false
		}
	}
	return true
}
