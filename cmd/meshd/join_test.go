package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestJoinFlagValidation(t *testing.T) {
	for _, bad := range []string{"node1:7700", "ftp://node1", "http://", "::"} {
		if _, err := loadSettings([]string{"--join", bad}, nil); !errors.Is(err, errUsage) {
			t.Errorf("--join %q: err %v, want errUsage", bad, err)
		}
	}
	s, err := loadSettings([]string{"--join", "http://node1:7700/", "--join", "https://10.0.0.2:7700"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := parseJoin(s.Join)
	if len(got) != 2 || got[0].base != "http://node1:7700" {
		t.Errorf("joins = %v", got)
	}
}

// peerIDs returns the peer IDs a daemon lists at GET /v1/peers.
func (d *daemon) peerIDs() []string {
	res, err := http.Get(d.api + "/v1/peers")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var body struct {
		Peers []struct {
			PeerID string `json:"peer_id"`
		}
	}
	if json.NewDecoder(res.Body).Decode(&body) != nil {
		return nil
	}
	var out []string
	for _, p := range body.Peers {
		out = append(out, p.PeerID)
	}
	return out
}

func (d *daemon) id() string {
	res, err := http.Get(d.api + "/v1/id")
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		PeerID string `json:"peer_id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		d.t.Fatal(err)
	}
	return body.PeerID
}

// TestE2EJoinByAPI: a node told only another's HTTP API URL finds it and
// replicates with it, while a second join target that never answers is
// retried in the background without holding anything up.
func TestE2EJoinByAPI(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := startDaemon(t, t.TempDir(), "--join", "http://"+a.api[len("http://"):], "--join", "http://127.0.0.1:1")
	aid := a.id()
	has := func(d *daemon, id string) bool {
		for _, p := range d.peerIDs() {
			if p == id {
				return true
			}
		}
		return false
	}
	eventually(t, 20*time.Second, "b lists a as a peer", func() bool { return has(b, aid) })
	eventually(t, 20*time.Second, "a lists b as a peer", func() bool { return has(a, b.id()) })
	if err := b.put("joined", "yes"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "b's write on a", func() bool { v, ok := a.get("joined"); return ok && v == "yes" })
}
