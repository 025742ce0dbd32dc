package access

import (
	"slices"
	"strings"
	"time"

	"github.com/ory/ladon"

	"github.com/twinstac/twinstac/catalog/search"
)

// index finds the policies that may apply to a request without looking
// at the others. Policies naming a subject exactly are found by subject
// and then by resource (exact, or the literal prefix of a resource
// pattern); policies with a subject pattern (user:<.*> matches every
// user) are found by resource and then checked against the subject.
// ladon's memory manager instead runs every policy's regular expressions
// on every request.
type index struct {
	all       []*ladon.DefaultPolicy // by id
	byID      map[string]*ladon.DefaultPolicy
	bySubject map[string]*prefixIndex // exact subject → its policies by resource
	// ofSubject lists each exact subject's policies once, in id order.
	ofSubject map[string][]*entry
	// patternSubjects holds, by resource, the policies with a subject pattern.
	patternSubjects *prefixIndex
	// subjects and resources answer FindPoliciesForSubject/Resource.
	subjects, resources *prefixIndex
}

// key is one value of a policy (a subject or resource): exact, or a
// pattern with its literal prefix.
type key struct {
	prefix    string
	isPattern bool
}

func keyOf(v string) key {
	prefix, isPattern := literalPrefix(v)
	return key{prefix, isPattern}
}

func (k key) mayMatch(v string) bool {
	if k.isPattern {
		return strings.HasPrefix(v, k.prefix)
	}
	return k.prefix == v
}

// entry is a policy with its keys worked out once.
type entry struct {
	p        *ladon.DefaultPolicy
	subjects []key
	// expires, when set, ends the policy (shares with an expiry).
	expires time.Time
	// items are the items the policy names one by one (SharedItem), each
	// once; shared with every search that reads them, never changed.
	items []search.ItemRef
	// collections and prefixes are what it grants on collections, when
	// it grants read (collectionGrants).
	collections, prefixes []string
}

// live reports whether the entry's policy is in force at now.
func (e *entry) live(now time.Time) bool { return e.expires.IsZero() || now.Before(e.expires) }

func (e *entry) mayMatchSubject(s string) bool {
	for _, k := range e.subjects {
		if k.mayMatch(s) {
			return true
		}
	}
	return false
}

// prefixIndex maps exact values and pattern prefixes to policies.
type prefixIndex struct {
	exact    map[string][]*entry
	patterns map[string][]*entry // literal prefix → entries
	prefixes []string            // the keys of patterns
}

func newPrefixIndex() *prefixIndex {
	return &prefixIndex{exact: map[string][]*entry{}, patterns: map[string][]*entry{}}
}

func (x *prefixIndex) add(value string, e *entry) {
	k := keyOf(value)
	if !k.isPattern {
		x.exact[value] = append(x.exact[value], e)
		return
	}
	if _, ok := x.patterns[k.prefix]; !ok {
		x.prefixes = append(x.prefixes, k.prefix)
	}
	x.patterns[k.prefix] = append(x.patterns[k.prefix], e)
}

// each calls fn for the entries that may match value (an entry may come
// more than once). It tries either every known prefix or every prefix of
// value, whichever is fewer.
func (x *prefixIndex) each(value string, fn func(*entry)) {
	for _, e := range x.exact[value] {
		fn(e)
	}
	if len(x.patterns) == 0 {
		return
	}
	if len(x.prefixes) <= len(value)+1 {
		for _, prefix := range x.prefixes {
			if strings.HasPrefix(value, prefix) {
				for _, e := range x.patterns[prefix] {
					fn(e)
				}
			}
		}
		return
	}
	for i := 0; i <= len(value); i++ {
		for _, e := range x.patterns[value[:i]] {
			fn(e)
		}
	}
}

func newIndex(policies []*ladon.DefaultPolicy) *index {
	x := &index{
		all:             policies,
		byID:            make(map[string]*ladon.DefaultPolicy, len(policies)),
		bySubject:       map[string]*prefixIndex{},
		ofSubject:       map[string][]*entry{},
		patternSubjects: newPrefixIndex(),
		subjects:        newPrefixIndex(),
		resources:       newPrefixIndex(),
	}
	slices.SortFunc(x.all, func(a, b *ladon.DefaultPolicy) int { return strings.Compare(a.ID, b.ID) })
	for _, p := range x.all {
		x.byID[p.ID] = p
		e := &entry{p: p, expires: expiresAt(p.Meta)}
		resources := dedupe(p.Resources)
		for _, r := range resources {
			if ref, ok := SharedItem(r); ok {
				e.items = append(e.items, ref)
			}
		}
		e.collections, e.prefixes = collectionGrants(resources)
		hasPattern := false
		for _, s := range dedupe(p.Subjects) {
			k := keyOf(s)
			e.subjects = append(e.subjects, k)
			x.subjects.add(s, e)
			if k.isPattern {
				hasPattern = true
				continue
			}
			x.ofSubject[s] = append(x.ofSubject[s], e)
			byRes := x.bySubject[s]
			if byRes == nil {
				byRes = newPrefixIndex()
				x.bySubject[s] = byRes
			}
			for _, r := range resources {
				byRes.add(r, e)
			}
		}
		for _, r := range resources {
			x.resources.add(r, e)
			if hasPattern {
				x.patternSubjects.add(r, e)
			}
		}
	}
	return x
}

func dedupe(ss []string) []string {
	if len(ss) < 2 {
		return ss
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

// candidates returns the policies that may apply to subject and resource
// (a superset of those that do), each once.
func (x *index) candidates(subject, resource string, now time.Time) []*ladon.DefaultPolicy {
	var out []*ladon.DefaultPolicy
	add := func(e *entry) {
		if e.live(now) && !slices.Contains(out, e.p) {
			out = append(out, e.p)
		}
	}
	if byRes := x.bySubject[subject]; byRes != nil {
		byRes.each(resource, add)
	}
	x.patternSubjects.each(resource, func(e *entry) {
		if e.mayMatchSubject(subject) {
			add(e)
		}
	})
	return out
}

// lookup returns the policies that may match value, each once, by id.
func (x *prefixIndex) lookup(value string) []*ladon.DefaultPolicy {
	var out []*ladon.DefaultPolicy
	x.each(value, func(e *entry) {
		if !slices.Contains(out, e.p) {
			out = append(out, e.p)
		}
	})
	slices.SortFunc(out, func(a, b *ladon.DefaultPolicy) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func policies(ps []*ladon.DefaultPolicy) ladon.Policies {
	out := make(ladon.Policies, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}
