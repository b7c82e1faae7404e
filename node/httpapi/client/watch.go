package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// Event is one change seen by Watch, or a reset.
type Event struct {
	// ID is the event's id, to resume after it (WatchOptions.From).
	ID      string
	Key     []byte
	Kind    string // register, mv-register, counter, set
	Deleted bool   // a register was deleted
	Value   []byte // a register's new value
	Counter *int64 // a counter's new value
	Members [][]byte
	Remote  bool // the change came from another node
	// Reset is set on an event that is no change: meshd could not resume
	// where asked (it restarted, or the client was away too long), so
	// changes may have been missed; ResetReason says why. Re-read what
	// you care about.
	Reset       bool
	ResetReason string
}

// WatchOptions selects what Watch follows.
type WatchOptions struct {
	Prefix []byte // only keys starting with Prefix
	// From is the ID of the last event seen: the stream starts after it.
	// Default "": from now.
	From string
}

// Watch calls fn with each change under opts.Prefix until ctx ends (nil),
// fn fails (its error), the connection breaks (ErrUnreachable) or meshd
// ends the watch (ErrWatchEnded). To carry on after a break, call it again
// with From set to the last ID seen, or use Follow.
func (c *Client) Watch(ctx context.Context, opts WatchOptions, fn func(Event) error) error {
	q := url.Values{"prefix": {string(opts.Prefix)}}
	hdr := map[string]string{"Accept": "text/event-stream"}
	if opts.From != "" {
		hdr["Last-Event-ID"] = opts.From
	}
	res, err := c.do(ctx, "GET", "/v1/watch?"+q.Encode(), nil, hdr)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20) // an event carries a whole value or set, base64
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && event != "":
			if event == "end" {
				return ErrWatchEnded
			}
			if err := dispatch(event, data, fn); err != nil {
				return err
			}
			event, data = "", ""
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w at %s: watch stream broke: %v", ErrUnreachable, c.where, err)
	}
	return fmt.Errorf("%w at %s: watch stream closed", ErrUnreachable, c.where)
}

func dispatch(event, data string, fn func(Event) error) error {
	switch event {
	case "change":
		var er apitypes.EventResponse
		if err := json.Unmarshal([]byte(data), &er); err != nil {
			return badAnswer(err)
		}
		ev, err := fromResponse(er)
		if err != nil {
			return err
		}
		return fn(ev)
	case "reset":
		var rr apitypes.ResetResponse
		_ = json.Unmarshal([]byte(data), &rr)
		return fn(Event{Reset: true, ResetReason: rr.Reason})
	}
	return nil // an event kind from a newer meshd
}

func fromResponse(er apitypes.EventResponse) (Event, error) {
	ev := Event{ID: er.ID, Kind: er.Kind, Deleted: er.Deleted, Counter: er.Counter, Remote: er.Remote}
	var err error
	if ev.Key, err = base64.StdEncoding.DecodeString(er.KeyB64); err != nil {
		return ev, badAnswer(err)
	}
	if er.ValueB64 != nil {
		if ev.Value, err = base64.StdEncoding.DecodeString(*er.ValueB64); err != nil {
			return ev, badAnswer(err)
		}
	}
	if er.MembersB64 != nil {
		if ev.Members, err = decodeList(er.MembersB64); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// FollowOptions tunes Follow's reconnection.
type FollowOptions struct {
	// MaxBackoff caps the wait between reconnection attempts, which starts
	// at 100 ms and doubles. Default 10 s.
	MaxBackoff time.Duration
	// OnRetry, when set, is told of each break and the wait before the next
	// attempt.
	OnRetry func(err error, wait time.Duration)
}

// Follow is Watch that reconnects when the connection breaks or meshd
// ends the watch (a restart), resuming after the last event it passed to
// fn. It returns only when ctx ends (nil), fn fails, or meshd refuses the
// watch (an *Error, such as a wrong token).
func (c *Client) Follow(ctx context.Context, opts WatchOptions, fopts FollowOptions, fn func(Event) error) error {
	if fopts.MaxBackoff <= 0 {
		fopts.MaxBackoff = 10 * time.Second
	}
	const firstBackoff = 100 * time.Millisecond
	wait := firstBackoff
	for {
		seen := false
		err := c.Watch(ctx, opts, func(ev Event) error {
			seen = true
			if ev.ID != "" {
				opts.From = ev.ID
			}
			return fn(ev)
		})
		var ae *Error
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrUnavailable): // meshd is closing: wait for the next one
		case errors.As(err, &ae), err != nil && !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrWatchEnded):
			return err
		}
		if seen {
			wait = firstBackoff
		}
		if fopts.OnRetry != nil {
			fopts.OnRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, fopts.MaxBackoff)
	}
}
