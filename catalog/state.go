package catalog

import (
	"slices"
	"strings"
)

// State is the lifecycle state of an item, kept in its `dt:state` property.
type State string

// The lifecycle states.
const (
	StateDraft      State = "draft"
	StatePublished  State = "published"
	StateDeprecated State = "deprecated"
	StateArchived   State = "archived"
	StateDeleted    State = "deleted"
)

// States lists every state in lifecycle order.
var States = []State{StateDraft, StatePublished, StateDeprecated, StateArchived, StateDeleted}

// DefaultListStates are the states an item listing shows when the caller
// does not ask for states explicitly.
var DefaultListStates = []State{StateDraft, StatePublished, StateDeprecated}

// moves holds the allowed lifecycle moves. Any state may move to deleted.
var moves = map[State][]State{
	StateDraft:      {StatePublished, StateDeleted},
	StatePublished:  {StateDeprecated, StateArchived, StateDeleted},
	StateDeprecated: {StateArchived, StateDeleted},
	StateArchived:   {StatePublished, StateDeleted},
}

// Valid reports whether s is one of the lifecycle states.
func (s State) Valid() bool { return slices.Contains(States, s) }

// AllowedMoves returns the states an item in state s may move to.
func (s State) AllowedMoves() []State { return moves[s] }

// CanMove reports whether an item may move from s to to.
func (s State) CanMove(to State) bool { return slices.Contains(moves[s], to) }

// Editable reports whether an item's content may change in state s.
// Published content is immutable: a change is a new version.
func (s State) Editable() bool { return s == StateDraft }

// ParseStates parses a comma-separated list of states.
// Codes: EINVALID.
func ParseStates(pointer, list string) ([]State, error) {
	var out []State
	for _, p := range strings.Split(list, ",") {
		s := State(strings.TrimSpace(p))
		if !s.Valid() {
			return nil, Invalid(pointer, "unknown state %q; states are %s", s, joinStates(States))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func joinStates(ss []State) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}
