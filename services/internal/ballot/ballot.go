// Package ballot defines a vote, the voter identity and their validation. It
// is the one place that decides what a valid vote looks like, so the HTTP
// handlers, the queue consumer and the stores all agree.
package ballot

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Option values are the wire values of the original app ("a" and "b"); the
// human labels (Cats/Dogs) are configuration and never stored.
const (
	OptionA = "a"
	OptionB = "b"
)

// Options lists every valid option in a fixed order.
var Options = []string{OptionA, OptionB}

// VoterIDLen is the length of a voter id: a 64-bit number as lowercase hex.
const VoterIDLen = 16

var (
	ErrBadOption  = errors.New("vote must be \"a\" or \"b\"")
	ErrBadVoterID = errors.New("voter id must be 16 hex characters")
	ErrBadStamp   = errors.New("cast stamp must be positive")
)

// Vote is one voter's choice at one instant. CastAt (unix nanoseconds, taken
// when the vote service accepted it) orders a voter's votes: the latest wins,
// whatever order the votes are delivered in.
type Vote struct {
	VoterID string
	Option  string
	CastAt  int64
}

// Validate reports whether v could have come from a well-behaved vote service.
func (v Vote) Validate() error {
	if err := ValidateOption(v.Option); err != nil {
		return err
	}
	if !ValidVoterID(v.VoterID) {
		return ErrBadVoterID
	}
	if v.CastAt <= 0 {
		return ErrBadStamp
	}
	return nil
}

// ValidateOption accepts exactly "a" or "b".
func ValidateOption(s string) error {
	if s != OptionA && s != OptionB {
		return ErrBadOption
	}
	return nil
}

// ValidVoterID accepts exactly 16 lowercase hex characters. Upper case is
// refused rather than folded so one voter can never appear under two ids.
func ValidVoterID(s string) bool {
	if len(s) != VoterIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewVoterID returns a random 64-bit id from crypto/rand so ids cannot be
// guessed to overwrite someone else's vote.
func NewVoterID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random voter id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// RandomUint64 is exposed for tests and tools that need ids without hex.
func RandomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// PayloadVersion is bumped if the meaning of the queue payload changes.
const PayloadVersion = 1

// Payload is the JSON pushed to the queue. voter_id and vote are the fields
// of the original app; the rest are ours.
type Payload struct {
	VoterID string `json:"voter_id"`
	Vote    string `json:"vote"`
	TS      int64  `json:"ts"`
	V       int    `json:"v"`
	Node    string `json:"node,omitempty"`
}

// Encode renders v as the queue payload; node names the accepting host for
// tracing a vote through the system.
func Encode(v Vote, node string) ([]byte, error) {
	b, err := json.Marshal(Payload{VoterID: v.VoterID, Vote: v.Option, TS: v.CastAt, V: PayloadVersion, Node: node})
	if err != nil {
		return nil, fmt.Errorf("encode vote payload: %w", err)
	}
	return b, nil
}

// Decode parses and validates a queue payload.
func Decode(b []byte) (Vote, error) {
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		return Vote{}, fmt.Errorf("decode vote payload: %w", err)
	}
	v := Vote{VoterID: strings.TrimSpace(p.VoterID), Option: p.Vote, CastAt: p.TS}
	if err := v.Validate(); err != nil {
		return Vote{}, fmt.Errorf("invalid vote payload: %w", err)
	}
	return v, nil
}

// Latest keeps, per voter, only the vote with the highest stamp (ties broken
// by option so the choice is deterministic). PostgreSQL refuses an upsert
// that touches one row twice, and a batch may hold a voter's old and new
// vote, so stores call this before writing.
func Latest(votes []Vote) []Vote {
	idx := make(map[string]int, len(votes))
	out := make([]Vote, 0, len(votes))
	for _, v := range votes {
		i, ok := idx[v.VoterID]
		if !ok {
			idx[v.VoterID] = len(out)
			out = append(out, v)
			continue
		}
		cur := out[i]
		if v.CastAt > cur.CastAt || (v.CastAt == cur.CastAt && v.Option > cur.Option) {
			out[i] = v
		}
	}
	return out
}
