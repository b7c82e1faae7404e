package simulations

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// Outcome is what the client learned about an operation.
type Outcome uint8

const (
	// Skipped: the op was not sent (its node was down when it came due).
	Skipped Outcome = iota
	// Acked: the node acknowledged the op, so it is durable and must survive.
	Acked
	// Indeterminate: the call failed; the op may or may not have applied.
	// The checker accepts either, and never counts it as lost.
	Indeterminate
)

// Record is one executed operation as the client saw it.
type Record struct {
	Op      Op
	Outcome Outcome
	Start   time.Duration // when the call was made, from the start of the run
	End     time.Duration // when it returned
	Err     string        // for Indeterminate
	// Stamp is, for acknowledged register writes, an upper bound on the HLC
	// timestamp the write got: the timestamp of the state of the key in the
	// writer's store right after the ack (see probe.go). It is the write's
	// own timestamp exactly when StampExact.
	Stamp      crdt.Timestamp
	StampExact bool
	StampOK    bool
	// StampMax, when not zero, says the client could not read the stamp
	// back and knows only a window: the write got a timestamp in
	// [Stamp, StampMax]. A client on the nodes' own clock (containers on one
	// host) takes the wall times the call began and returned: the node
	// stamps the write in between, and a hybrid clock never runs ahead of
	// the latest physical time it has seen. Stamp is then a lower bound, so
	// a final state older than it still proves the write lost.
	StampMax crdt.Timestamp `json:",omitzero"`
}

// within reports whether ts lies in the record's stamp window.
func (r Record) within(ts crdt.Timestamp) bool {
	return !r.StampMax.IsZero() && r.Stamp.Compare(ts) <= 0 && ts.Compare(r.StampMax) <= 0
}

// Report is the outcome of checking a converged state against the history.
type Report struct {
	Acked         int      // acknowledged operations
	Indeterminate int      // failed calls (may or may not have applied)
	Skipped       int      // ops not sent because their node was down
	Lost          int      // acknowledged writes whose effect is missing
	Errors        int      // states no write explains (phantoms, wrong kinds, resurrections)
	Unchecked     int      // set members whose presence the history does not decide
	Violations    []string // the first few findings, for humans
}

// OK reports whether nothing was lost and nothing unexplained was found.
func (r Report) OK() bool { return r.Lost == 0 && r.Errors == 0 }

const maxViolations = 20

func (r *Report) lost(format string, args ...any) {
	r.Lost++
	r.note(format, args...)
}

func (r *Report) fail(format string, args ...any) {
	r.Errors++
	r.note(format, args...)
}

func (r *Report) note(format string, args ...any) {
	if len(r.Violations) < maxViolations {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	}
}

// Check compares final (key -> state of the converged mesh) with the
// history of client operations. The model, per CRDT kind:
//
//   - LWW register: the final state must have a timestamp at least that of
//     every acknowledged write to the key (else that write was lost), and
//     must be one of the writes made (its value names the write; a tombstone
//     must carry the timestamp a delete was seen to get).
//   - PN-counter: the final value must equal the sum of acknowledged
//     increments, give or take indeterminate ones.
//   - add-wins OR-set, per member: present if some add is certainly not
//     covered by any remove (it began after every remove of the member had
//     returned); absent if every add is certainly covered (a remove through
//     the same node began after the add was acknowledged); otherwise the
//     history does not decide, and the member is counted as unchecked.
//
// Keys and members nobody wrote are errors.
func Check(history []Record, final map[string]crdt.State) Report {
	return CheckCollected(history, final, 0)
}

// CheckCollected is Check for a mesh that collects tombstones: a register
// may also be absent because its last write was a delete that returned
// before collectedBefore (an offset from the start of the run, like
// Record.End), whose tombstone every node may have collected since. A
// later acknowledged write to it must still be there.
func CheckCollected(history []Record, final map[string]crdt.State, collectedBefore time.Duration) Report {
	var rep Report
	byKey := map[string][]Record{}
	for _, rec := range history {
		switch rec.Outcome {
		case Skipped:
			rep.Skipped++
			continue
		case Acked:
			rep.Acked++
		case Indeterminate:
			rep.Indeterminate++
		}
		byKey[rec.Op.Key] = append(byKey[rec.Op.Key], rec)
	}
	for key, st := range final {
		if _, ok := byKey[key]; !ok {
			rep.fail("%s: present (%s) but never written", key, st.Kind())
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		recs := byKey[key]
		switch recs[0].Op.Kind {
		case OpPut, OpDelete:
			checkRegister(&rep, key, recs, final[key], collectedBefore)
		case OpIncr:
			checkCounter(&rep, key, recs, final[key])
		case OpSAdd, OpSRem:
			checkSet(&rep, key, recs, final[key])
		}
	}
	return rep
}

func anyAcked(recs []Record) int {
	n := 0
	for _, r := range recs {
		if r.Outcome == Acked {
			n++
		}
	}
	return n
}

func checkRegister(rep *Report, key string, recs []Record, st crdt.State, collectedBefore time.Duration) {
	if st == nil {
		if n := anyAcked(recs); n > 0 && !collectedDelete(recs, collectedBefore) {
			rep.Lost += n - 1
			rep.lost("%s: %d acknowledged writes but the key is absent", key, n)
		}
		return
	}
	reg, ok := st.(*crdt.LWW)
	if !ok {
		rep.fail("%s: is a %s, want a register", key, st.Kind())
		return
	}
	fts := reg.Timestamp()
	for _, r := range recs {
		if r.Outcome != Acked {
			continue
		}
		if !r.StampOK {
			rep.fail("%s: %v (op %d): %v", key, r.Op.Kind, r.Op.Seq, ErrProbe)
			continue
		}
		switch {
		case r.Stamp.Compare(fts) <= 0:
		case r.Op.Kind == OpDelete && !reg.Deleted():
			rep.lost("%s: resurrected: final value at %v is older than the acknowledged delete of op %d at %v", key, fts, r.Op.Seq, r.Stamp)
		default:
			rep.lost("%s: acknowledged %s of op %d at %v is newer than the final state at %v", key, r.Op.Kind, r.Op.Seq, r.Stamp, fts)
		}
	}
	// Which write does the final state come from?
	val, live := reg.Value()
	for _, r := range recs {
		if r.Outcome == Indeterminate {
			if live && r.Op.Kind == OpPut && r.Op.Value == string(val) || !live && r.Op.Kind == OpDelete {
				return
			}
			continue
		}
		switch {
		case live && r.Op.Kind == OpPut && r.Op.Value == string(val):
			if r.StampExact && r.Stamp != fts {
				rep.fail("%s: final value of op %d carries %v, the write got %v", key, r.Op.Seq, fts, r.Stamp)
			}
			if !r.StampMax.IsZero() && !r.within(fts) {
				rep.fail("%s: final value of op %d carries %v, outside its call's window [%v, %v]", key, r.Op.Seq, fts, r.Stamp, r.StampMax)
			}
			return
		case !live && r.Op.Kind == OpDelete && r.StampOK && (r.Stamp == fts || r.within(fts)):
			return
		}
	}
	if live {
		rep.fail("%s: final value %q was never written", key, val)
	} else {
		rep.fail("%s: final tombstone at %v matches no delete", key, fts)
	}
}

// collectedDelete reports whether a register's absence is explained by
// a delete whose tombstone was collected: a delete that returned before
// the collection cutoff and is the key's last write, so no acknowledged
// write is newer. An acknowledged delete must
// carry a stamp at least every acknowledged put's; an indeterminate one
// must have begun after every acknowledged put returned.
func collectedDelete(recs []Record, before time.Duration) bool {
	var lastPut crdt.Timestamp
	var lastPutEnd time.Duration
	for _, r := range recs {
		if r.Outcome == Acked && r.Op.Kind == OpPut {
			if r.Stamp.Compare(lastPut) > 0 {
				lastPut = r.Stamp
			}
			lastPutEnd = max(lastPutEnd, r.End)
		}
	}
	for _, r := range recs {
		if r.Op.Kind != OpDelete || r.End >= before {
			continue
		}
		if r.Outcome == Acked && r.StampOK && r.Stamp.Compare(lastPut) >= 0 ||
			r.Outcome == Indeterminate && r.Start > lastPutEnd {
			return true
		}
	}
	return false
}

func checkCounter(rep *Report, key string, recs []Record, st crdt.State) {
	var want, up, down int64
	for _, r := range recs {
		switch r.Outcome {
		case Acked:
			want += r.Op.Delta
		case Indeterminate:
			if r.Op.Delta > 0 {
				up += r.Op.Delta
			} else {
				down += r.Op.Delta
			}
		}
	}
	var got int64
	if st != nil {
		c, ok := st.(*crdt.Counter)
		if !ok {
			rep.fail("%s: is a %s, want a counter", key, st.Kind())
			return
		}
		got = c.Value()
	} else if anyAcked(recs) > 0 {
		rep.lost("%s: counter absent after %d acknowledged increments", key, anyAcked(recs))
		return
	}
	switch {
	case got < want+down:
		// Increments can be negative, so a shortfall cannot name the lost
		// op; count the key once.
		rep.lost("%s: counter is %d, acknowledged increments sum to %d (indeterminate %+d/%+d)", key, got, want, down, up)
	case got > want+up:
		rep.fail("%s: counter is %d, acknowledged increments sum to %d (indeterminate %+d/%+d)", key, got, want, down, up)
	}
}

const forever = time.Duration(math.MaxInt64)

func checkSet(rep *Report, key string, recs []Record, st crdt.State) {
	present := map[string]bool{}
	if st != nil {
		s, ok := st.(*crdt.ORSet)
		if !ok {
			rep.fail("%s: is a %s, want a set", key, st.Kind())
			return
		}
		for _, m := range s.Members() {
			present[string(m)] = true
		}
	}
	type member struct{ adds, rems []Record }
	members := map[string]*member{}
	for _, r := range recs {
		m := members[r.Op.Value]
		if m == nil {
			m = &member{}
			members[r.Op.Value] = m
		}
		if r.Op.Kind == OpSAdd {
			m.adds = append(m.adds, r)
		} else {
			m.rems = append(m.rems, r)
		}
	}
	for name := range present {
		if m := members[name]; m == nil || len(m.adds) == 0 {
			rep.fail("%s: member %q present but never added", key, name)
		}
	}
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		m := members[name]
		mustHave, mustNot := setExpectation(m.adds, m.rems)
		switch {
		case mustHave && !present[name]:
			rep.lost("%s: member %q was added after every remove of it returned, but is absent", key, name)
		case mustNot && present[name] && len(m.adds) > 0:
			rep.fail("%s: member %q is present although every add of it was removed through its own node", key, name)
		case !mustHave && !mustNot:
			rep.Unchecked++
		}
	}
}

// setExpectation decides an add-wins member from its adds and removes.
func setExpectation(adds, rems []Record) (mustHave, mustNot bool) {
	remEnd := func(r Record) time.Duration {
		if r.Outcome == Acked {
			return r.End
		}
		return forever // an indeterminate remove may still be pending
	}
	for _, a := range adds {
		if a.Outcome != Acked {
			continue
		}
		uncovered := true
		for _, r := range rems {
			if a.Start <= remEnd(r) {
				uncovered = false
				break
			}
		}
		if uncovered {
			return true, false
		}
	}
	if len(adds) == 0 {
		return false, true
	}
	for _, a := range adds {
		if a.Outcome != Acked {
			return false, false
		}
		covered := false
		for _, r := range rems {
			if r.Outcome == Acked && r.Op.Node == a.Op.Node && r.Start > a.End {
				covered = true
				break
			}
		}
		if !covered {
			return false, false
		}
	}
	return false, true
}
