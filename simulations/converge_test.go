package simulations

import "testing"

func TestAgreement(t *testing.T) {
	for _, c := range []struct {
		roots       []string
		agree, down int
	}{
		{nil, 0, 0},
		{[]string{"a", "a", "a"}, 3, 0},
		{[]string{"a", "b", "a", ""}, 2, 1},
		{[]string{"", ""}, 0, 2},
	} {
		if agree, down := Agreement(c.roots); agree != c.agree || down != c.down {
			t.Errorf("Agreement(%q) = %d, %d; want %d, %d", c.roots, agree, down, c.agree, c.down)
		}
	}
}
