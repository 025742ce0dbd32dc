package access

import (
	"regexp"
	"strings"
	"sync"

	"github.com/ory/ladon"
)

// Patterns in policies follow ladon: literal text with regular
// expressions between < and >, such as "items:c1/<.*>". They are compiled
// with Go's regexp (RE2: linear time, so a policy cannot make a decision
// slow) and cached.

// matcher is ladon's (unexported) matcher interface with a cache of
// compiled patterns.
type matcher struct {
	cache sync.Map // pattern → *regexp.Regexp
}

// Matches implements ladon.Matcher.
func (m *matcher) Matches(_ ladon.Policy, haystack []string, needle string) (bool, error) {
	for _, h := range haystack {
		if !strings.ContainsRune(h, '<') {
			if h == needle {
				return true, nil
			}
			continue
		}
		re, err := m.compile(h)
		if err != nil {
			return false, err
		}
		if re.MatchString(needle) {
			return true, nil
		}
	}
	return false, nil
}

func (m *matcher) compile(pattern string) (*regexp.Regexp, error) {
	if re, ok := m.cache.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := compilePattern(pattern)
	if err != nil {
		return nil, err
	}
	m.cache.Store(pattern, re)
	return re, nil
}

// compilePattern turns a ladon pattern into an anchored Go regexp.
func compilePattern(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	rest := pattern
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		j := closing(rest, i)
		if j < 0 {
			return nil, errUnbalanced
		}
		b.WriteString("(?:" + rest[i+1:j] + ")")
		rest = rest[j+1:]
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// closing returns the index of the > that closes the < at i, counting
// nested pairs, or -1.
func closing(s string, i int) int {
	depth := 0
	for k := i; k < len(s); k++ {
		switch s[k] {
		case '<':
			depth++
		case '>':
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

type patternError string

func (e patternError) Error() string { return string(e) }

const errUnbalanced = patternError("a < has no matching >")

// literalPrefix is the part of a pattern before its first regular
// expression: every string the pattern matches starts with it.
func literalPrefix(pattern string) (prefix string, isPattern bool) {
	i := strings.IndexByte(pattern, '<')
	if i < 0 {
		return pattern, false
	}
	return pattern[:i], true
}
