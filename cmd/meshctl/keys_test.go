package main

import (
	"testing"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
)

// Keys are byte strings, not paths: none of these may be cleaned, split or
// dropped on the way to the node.
func TestKeysSurviveTheURL(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	for _, k := range []string{"a//b", "../x", "./y", "z/", "/lead", "q?x=1", "h#f", "%41", "sp ace", "ü", "a/./b", "..", ".", "\x00\xff"} {
		if r := h.ctl("put", k, "v-"+k); r.code != 0 {
			t.Errorf("put %q: exit %d, %s", k, r.code, r.stderr)
			continue
		}
		if v, err := h.fake.Get(t.Context(), []byte(k)); err != nil || string(v) != "v-"+k {
			t.Errorf("put %q reached the node as something else: %q, %v", k, v, err)
		}
		if r := h.ctl("get", k); r.stdout != "v-"+k {
			t.Errorf("get %q = %q, stderr %q", k, r.stdout, r.stderr)
		}
	}
}
